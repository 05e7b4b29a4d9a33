"""Races: fifty requests at once for the same thing (pay one session, capture one payment, one
Idempotency-Key) make exactly one gateway effect, and every answer is a sensible one."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import GatewayCallLog
from app.hosted.models import CheckoutSession
from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.sbps.testing import make_tds_info_token
from app.sandbox.sbps.testing import make_token as make_sbps_token
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.integration.test_customers import new_card, new_customer
from tests.reliability.support_chaos import ShopperAnswers
from tests.support import sbps
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.reliability

N = 50


async def _ledger(sim: httpx.AsyncClient, cod: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sim.get("/_sandbox/ledger")).json()
    return [r for r in rows if r["cod"] == cod]


async def _calls(sessions: async_sessionmaker[AsyncSession], operation: str) -> list[str | None]:
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(GatewayCallLog.ref).where(GatewayCallLog.operation == operation)
                )
            ).scalars()
        )


def _report(capsys: pytest.CaptureFixture[str], what: str, answers: Counter[Any]) -> None:
    with capsys.disabled():
        print(f"\nraces: {N} x {what}: {dict(answers.most_common())}")


async def _new_session(app: RunningApp, order_id: str, **extra: Any) -> dict[str, Any]:
    r = await app.merchant.post(
        "/v1/checkout/sessions", json={**SESSION, "order_id": order_id, **extra}
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_fifty_pays_of_one_session_charge_once(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await make_app()
    # A slow card keeps the winner's gateway call open while the others arrive.
    (await sim.post("/_sandbox/config", json={"slow_seconds": 0.5})).raise_for_status()
    cs = await _new_session(app, "racepay")
    tokens = await asyncio.gather(
        *[make_token(sim, card=cards.CARD_SLOW, three_ds=three_ds_of(SESSION)) for _ in range(N)]
    )

    async def pay(i: int, token: str) -> httpx.Response:
        if i % 2:  # half from the browser's form post, half as JSON
            return await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token})
        return await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})

    results = await asyncio.gather(*[pay(i, t) for i, t in enumerate(tokens)])
    answers = ShopperAnswers()
    kinds: Counter[str] = Counter()
    for i, r in enumerate(results):
        answers.check(r, f"pay {i}")
        kinds[f"{'form' if i % 2 else 'json'} {r.status_code}"] += 1
    _report(capsys, "pay one session", kinds)
    assert answers.problems == [], answers.problems
    json_codes = Counter(r.status_code for i, r in enumerate(results) if not i % 2)
    form_codes = Counter(r.status_code for i, r in enumerate(results) if i % 2)
    # The form post shows the result page of the session's one payment (200) to everyone.
    assert set(json_codes) <= {200, 409} and set(form_codes) == {200}, (json_codes, form_codes)
    winners = [r for r in results if r.status_code == 200 and "json" in r.headers["content-type"]]
    assert len(winners) <= 1
    [charged] = await _ledger(sim, "racepay")
    assert charged["status"] == "authorized"
    async with sessions() as session:
        [p] = (
            await session.execute(select(Payment).where(Payment.checkout_session_id == cs["id"]))
        ).scalars()
    assert p.status == "authorized" and p.gid == charged["gid"]
    assert await _calls(sessions, "charge_token") == [p.id]
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] == "payment_in_progress" and r.json()["payment_id"] == p.id


async def test_fifty_captures_of_one_payment_capture_once(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await make_app()
    cs = await _new_session(app, "racecapture")
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    paid = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert paid.status_code == 200 and paid.json()["status"] == "authorized", paid.text
    pid = paid.json()["id"]

    results = await asyncio.gather(*[app.ops.post(f"/v1/payments/{pid}/capture") for _ in range(N)])
    answers = Counter(
        f"{r.status_code} {r.json().get('code') or r.json().get('status')}" for r in results
    )
    _report(capsys, "capture one payment", answers)
    assert all(r.status_code in (200, 409) for r in results), answers
    assert any(r.status_code == 200 for r in results)
    for r in results:
        if r.status_code == 409:
            assert r.json()["code"] in ("operation_in_progress", "invalid_transition"), r.text
    [row] = await _ledger(sim, "racecapture")
    assert row["status"] == "captured"
    assert await _calls(sessions, "capture") == [pid]
    detail = (await app.ops.get(f"/v1/payments/{pid}")).json()
    assert detail["status"] == "captured"
    assert [e["to_status"] for e in detail["events"] if e["type"] == "status_changed"] == [
        "authorized",
        "captured",
    ]


async def test_fifty_identical_idempotent_requests_act_once(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await make_app()
    await new_customer(app)
    await new_card(app, sim)

    # A one-touch charge: money moves at the gateway.
    charge = {"customer_id": "cust001", "card_num": 1, "amount": 1200, "tax": 120}
    body = {**charge, "job": "CAPTURE", "order_id": "raceidem"}
    headers = {"Idempotency-Key": "race-idem-1"}
    results = await asyncio.gather(
        *[app.merchant.post("/v1/payments", json=body, headers=headers) for _ in range(N)]
    )
    answers = Counter(
        f"{r.status_code}{' replay' if r.headers.get('Idempotent-Replayed') else ''}"
        for r in results
    )
    _report(capsys, "POST /v1/payments, one Idempotency-Key", answers)
    assert all(r.status_code in (201, 409) for r in results), answers
    created = [r.json() for r in results if r.status_code == 201]
    assert created and {p["id"] for p in created} == {created[0]["id"]}
    [row] = await _ledger(sim, "raceidem")
    assert row["status"] == "captured" and row["gid"] == created[0]["gid"]
    assert await _calls(sessions, "charge_onetouch") == [created[0]["id"]]
    # Once finished, the same request is a replay; nothing more is charged.
    again = await app.merchant.post("/v1/payments", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert len(await _ledger(sim, "raceidem")) == 1

    # A checkout session: one row, whoever wins.
    session_body = {**SESSION, "order_id": "racesession"}
    headers = {"Idempotency-Key": "race-session-1"}
    results = await asyncio.gather(
        *[
            app.merchant.post("/v1/checkout/sessions", json=session_body, headers=headers)
            for _ in range(N)
        ]
    )
    answers = Counter(
        f"{r.status_code}{' replay' if r.headers.get('Idempotent-Replayed') else ''}"
        for r in results
    )
    _report(capsys, "POST /v1/checkout/sessions, one Idempotency-Key", answers)
    assert all(r.status_code in (201, 409) for r in results), answers
    ids = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(ids) == 1
    async with sessions() as session:
        rows = list(
            (
                await session.execute(
                    select(CheckoutSession.id).where(CheckoutSession.order_id == "racesession")
                )
            ).scalars()
        )
    assert rows == list(ids)


async def test_fifty_pays_and_fifty_returns_of_one_sbps_session_charge_once(
    make_app: AppFactory,
    sbps_simulator_url: str,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same race with SBPS and its 3-D Secure: fifty pays make one TA02-00101-101, and
    fifty returns from the issuer's page at once (reloads, a replayed link) make one
    ST01-00118-101 and one charge in the simulator's ledger."""
    app = await make_app(
        gateway_provider="sbps",
        sbps_api_url=f"{sbps_simulator_url}/api/xmlapi.do",
        sbps_merchant_id=sbps.MERCHANT_ID,
        sbps_service_id=sbps.SERVICE_ID,
        sbps_hash_key=sbps.HASH_KEY,
        reconcile_interval_seconds=0,
        orphan_sweep_interval_seconds=0,
    )
    cs = await _new_session(app, "racesbps")
    pairs = await asyncio.gather(*[make_sbps_token(sbps_sim) for _ in range(N)])
    infos = await asyncio.gather(*[make_tds_info_token(sbps_sim) for _ in range(N)])

    async def pay(i: int) -> httpx.Response:
        body = {
            "token": pairs[i].token,
            "token_key": pairs[i].token_key,
            "tds_info_token": infos[i].token,
            "tds_info_token_key": infos[i].token_key,
        }
        return await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json=body)

    results = await asyncio.gather(*[pay(i) for i in range(N)])
    codes = Counter(r.status_code for r in results)
    _report(capsys, "SBPS pay one session (3-D Secure)", codes)
    assert set(codes) <= {202, 409}, codes
    async with sessions() as session:
        [p] = (
            await session.execute(select(Payment).where(Payment.checkout_session_id == cs["id"]))
        ).scalars()
    assert p.tds_redirect_url and await _calls(sessions, "three_ds_start") == [p.id]
    issuer = await sbps_sim.get(p.tds_redirect_url)
    assert issuer.status_code == 303
    back = urlsplit(issuer.headers["location"])
    returns = await asyncio.gather(*[app.client.get(f"{back.path}?{back.query}") for _ in range(N)])
    _report(capsys, "SBPS 3-D Secure returns", Counter(r.status_code for r in returns))
    assert {r.status_code for r in returns} == {303}
    assert await _calls(sessions, "three_ds_authorize") == [p.id]
    rows = [
        r for r in (await sbps_sim.get("_sandbox/ledger")).json() if r["order_id"] == "racesbps"
    ]
    assert [r["approved"] for r in rows] == [True]
    async with sessions() as session:
        settled = await session.get(Payment, p.id)
    assert settled is not None and settled.status == "authorized"
