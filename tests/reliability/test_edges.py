"""Hardened edges: cross-site form posts to the shopper's pages are refused (Origin,
Sec-Fetch-Site), money fields are strict integers, expired Idempotency-Keys are purged by the
replicas' background loop, and session ids (bearer capabilities) are not in the access log."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.idempotency import IdempotencyKey, purge_expired
from app.payments.models import Payment
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.reliability.support_chaos import app_processes
from tests.support.db import gateway_call_count
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.reliability

CROSS_SITE: list[dict[str, str]] = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
]


async def test_cross_site_form_posts_are_refused(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = (await app.merchant.post("/v1/checkout/sessions", json=SESSION)).json()
    await app.merchant.post("/v1/customers", json={"uid": "xsite1", "email": "s@example.com"})
    page = (await app.merchant.post("/v1/customers/xsite1/card-sessions", json={})).json()
    calls = await gateway_call_count(sessions)
    accepted = []
    for headers in CROSS_SITE:
        token = await make_token(sim, three_ds=three_ds_of(SESSION))
        r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token}, headers=headers)
        if r.status_code != 403:
            accepted.append(f"{headers}: {r.status_code}")
            continue
        assert r.headers["content-type"].startswith("text/html"), r.headers
        assert "別のサイトから送信された" in r.text, r.text  # the shopper's language (ja)
    # The card page's delete button too.
    r = await app.client.post(
        f"/checkout/{page['id']}/cards/1/delete", headers={"Origin": "https://evil.example"}
    )
    if r.status_code != 403:
        accepted.append(f"card delete: {r.status_code}")
    en = await app.client.post(
        f"/checkout/{cs['id']}?lang=en", data={"tkn": "x" * 20}, headers=CROSS_SITE[0]
    )
    print(f"\nFIGURE cross-site form posts accepted: {len(accepted)} of {len(CROSS_SITE) + 1}")
    assert not accepted, accepted
    assert en.status_code == 403 and "another website" in en.text, en.text
    assert await gateway_call_count(sessions) == calls, "nothing reached the gateway"
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Payment)) == 0
    # Our own page's post (same origin), and a post without these headers, go through.
    same = {"Origin": app.url, "Sec-Fetch-Site": "same-origin"}
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token}, headers=same)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"], r.text
    cs2 = (await app.merchant.post("/v1/checkout/sessions", json=SESSION)).json()
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/checkout/{cs2['id']}", data={"tkn": token})
    assert r.status_code == 200, r.text


# (path, body, field, role): every request body that holds an amount.
MONEY: list[tuple[str, dict[str, Any], str, str]] = [
    ("/v1/checkout/sessions", {**SESSION}, "amount", "merchant"),
    ("/v1/checkout/sessions", {**SESSION}, "tax", "merchant"),
    ("/v1/checkout/sessions", {**SESSION}, "shipping", "merchant"),
    ("/v1/payments", {"customer_id": "c1", "card_num": 1, "amount": 500}, "amount", "merchant"),
    ("/v1/payments", {"customer_id": "c1", "card_num": 1, "amount": 500}, "tax", "merchant"),
    ("/v1/payments/pay_x/reauthorize", {"amount": 500}, "amount", "ops"),
    ("/v1/payments/pay_x/reauthorize", {"amount": 500}, "shipping", "ops"),
]


@pytest.mark.parametrize("value", [True, 1.0, "1000", 1000.5, "１０００"])
async def test_money_fields_are_strict_integers(make_app: AppFactory, value: Any) -> None:
    app = await make_app()
    clients = {"merchant": app.merchant, "ops": app.ops}
    coerced = []
    for i, (path, body, field, role) in enumerate(MONEY):
        headers = {"Idempotency-Key": f"strict-{i}-{field}"}
        r = await clients[role].post(path, json={**body, field: value}, headers=headers)
        named = r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == [field]
        if not named:  # taken as a number (and refused, if at all, for something else)
            coerced.append(f"{path} {field}={value!r}: {r.status_code}")
    print(f"\nFIGURE money value {value!r} accepted: {len(coerced)} of {len(MONEY)}")
    assert not coerced, coerced


async def test_expired_idempotency_keys_are_purged_in_batches(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    now = utcnow()

    def key(i: int, expires_in: timedelta) -> IdempotencyKey:
        return IdempotencyKey(
            principal="merchant:key_test",
            key=f"k-{i}",
            method="POST",
            path="/v1/checkout/sessions",
            request_hash="0" * 64,
            status="completed",
            response_status=201,
            response_body="{}",
            expires_at=now + expires_in,
        )

    async with sessions() as s:
        s.add_all([key(i, timedelta(days=-1)) for i in range(1200)])
        s.add_all([key(10_000 + i, timedelta(days=6)) for i in range(5)])
        await s.commit()
    # Bounded: one batch of 500 per call when asked for one.
    assert await purge_expired(sessions, batch=500, max_batches=1) == 500
    # The app's background loop (every replica runs it) takes the rest by itself.
    await make_app()
    remaining = 700
    for _ in range(120):
        async with sessions() as s:
            remaining = int(
                await s.scalar(
                    select(func.count())
                    .select_from(IdempotencyKey)
                    .where(IdempotencyKey.expires_at < utcnow())
                )
                or 0
            )
        if remaining == 0:
            break
        await asyncio.sleep(0.5)
    async with sessions() as s:
        live = await s.scalar(select(func.count()).select_from(IdempotencyKey))
    print(f"\nFIGURE expired idempotency keys left after the loop ran: {remaining} of 1200")
    assert remaining == 0
    assert live == 5, "keys still within their 7 days are kept"


async def test_session_ids_are_not_in_the_access_log(
    db_url: str, sim: httpx.AsyncClient, tmp_path: Path
) -> None:
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    env = {"LOG_LEVEL": "INFO", "SPOOL_DIR": str(tmp_path / "spool")}
    async with app_processes([env], db_url=db_url, log_dir=log_dir, name="edges-app") as [app]:
        cs = (await app.merchant.post("/v1/checkout/sessions", json=SESSION)).json()["id"]
        await app.client.get(f"/checkout/{cs}")
        await app.client.get(f"/checkout/{cs}/status")
        token = await make_token(sim, three_ds=three_ds_of(SESSION))
        await app.client.post(f"/v1/checkout/sessions/{cs}/pay", json={"token": token})
    text = (log_dir / "edges-app-0.log").read_text()
    lines = [line for line in text.splitlines() if cs in line]
    print(f"\nFIGURE log lines holding a whole session id: {len(lines)}")
    assert re.search(rf"GET /checkout/{cs[:11]}\S* HTTP", text), "the access lines are there"
    assert not lines, lines[:5]
