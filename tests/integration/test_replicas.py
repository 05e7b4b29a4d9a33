"""Two app processes on one PostgreSQL, as replicas behind a load balancer run: sessions,
idempotency, velocity limits and the janitor hold across them because they live in the
database, not in a process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.gateway.audit import GatewayCallLog
from app.payments.models import Payment, PaymentEvent
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.integration.test_reconcile import add_payment
from tests.support.fixtures import MERCHANT_KEY, OPS_KEY, ROOT
from tests.support.http import wait_http
from tests.support.logs import log_file
from tests.support.pg import free_port

pytestmark = pytest.mark.integration

THREE_DS = three_ds_of(SESSION)
UVICORN = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"]


@dataclass
class Replica:
    url: str
    client: httpx.AsyncClient
    merchant: httpx.AsyncClient
    ops: httpx.AsyncClient


@pytest.fixture
def replica_urls(
    db_url: str, simulator_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> Iterator[list[str]]:
    """Two `uvicorn app.main:app` processes, each with its own janitor (1 s interval)."""
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "GATEWAY_MODE": "sandbox",
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "API_KEYS": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
        "KICKBACK_ALLOWED_IPS": "127.0.0.1",
        "RECONCILE_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "WARNING",
    }
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(2):
            port = free_port()
            log = log_file(f"replica-{i}", tmp_path).open("ab")
            procs.append(
                subprocess.Popen(
                    [*UVICORN, "--port", str(port)],
                    cwd=ROOT,
                    env={**env, "SPOOL_DIR": str(tmp_path / f"spool-{i}")},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_http(f"{url}/healthz")
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(15)


@pytest.fixture
async def replicas(replica_urls: list[str]) -> AsyncIterator[list[Replica]]:
    made: list[Replica] = []
    for url in replica_urls:
        made.append(
            Replica(
                url,
                httpx.AsyncClient(base_url=url, timeout=30),
                httpx.AsyncClient(
                    base_url=url, timeout=30, headers={"Authorization": f"Bearer {MERCHANT_KEY}"}
                ),
                httpx.AsyncClient(
                    base_url=url, timeout=30, headers={"Authorization": f"Bearer {OPS_KEY}"}
                ),
            )
        )
    yield made
    for r in made:
        for c in (r.client, r.merchant, r.ops):
            await c.aclose()


async def _session(replica: Replica, **overrides: Any) -> str:
    r = await replica.merchant.post("/v1/checkout/sessions", json={**SESSION, **overrides})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _count_calls(sessions: async_sessionmaker[AsyncSession], operation: str) -> int:
    async with sessions() as s:
        n = await s.scalar(select(func.count()).where(GatewayCallLog.operation == operation))
    return int(n or 0)


async def test_a_session_made_on_one_replica_is_paid_once_across_both(
    replicas: list[Replica], sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, b = replicas
    cs = await _session(a)
    assert (await b.client.get(f"/checkout/{cs}")).status_code == 200
    tokens = [await make_token(sim, three_ds=THREE_DS) for _ in range(10)]
    answers = await asyncio.gather(
        *[
            (a if i % 2 else b).client.post(f"/v1/checkout/sessions/{cs}/pay", json={"token": t})
            for i, t in enumerate(tokens)
        ]
    )
    codes = sorted(r.status_code for r in answers)
    assert codes.count(200) == 1 and set(codes) <= {200, 409}, codes
    assert await _count_calls(sessions, "charge_token") == 1
    status = (await a.client.get(f"/checkout/{cs}/status")).json()
    assert status["status"] == "succeeded"


async def test_one_idempotency_key_sent_to_both_replicas_captures_once(
    replicas: list[Replica], sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, b = replicas
    cs = await _session(a)
    token = await make_token(sim, three_ds=THREE_DS)
    pay = await b.client.post(f"/v1/checkout/sessions/{cs}/pay", json={"token": token})
    pid = pay.json()["id"]
    headers = {"Idempotency-Key": "capture-across-replicas"}
    answers = await asyncio.gather(
        *[
            (a if i % 2 else b).ops.post(f"/v1/payments/{pid}/capture", headers=headers)
            for i in range(20)
        ]
    )
    codes = [r.status_code for r in answers]
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}, codes
    assert await _count_calls(sessions, "capture") == 1
    # Afterwards every replica replays the same first answer.
    for r in (a, b):
        again = await r.ops.post(f"/v1/payments/{pid}/capture", headers=headers)
        assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
        assert again.json()["status"] == "captured"


async def test_velocity_limit_counts_attempts_from_both_replicas(
    replicas: list[Replica], sim: httpx.AsyncClient
) -> None:
    a, b = replicas
    cs = await _session(a)
    seen: list[int] = []
    for i in range(7):
        token = await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=THREE_DS)
        r = await (a if i % 2 else b).client.post(
            f"/v1/checkout/sessions/{cs}/pay", json={"token": token}
        )
        seen.append(r.status_code)
    # Five declines (whichever replica took them), then refused on both.
    assert seen[:5] == [402] * 5, seen
    assert seen[5:] == [429, 429], seen


async def test_janitors_on_both_replicas_settle_each_payment_once(
    replica_urls: list[str], sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    pids = []
    for i in range(8):
        token = await make_token(sim, three_ds=THREE_DS)
        # A charge the gateway made, and a payment row of ours that never learned it.
        form = {"aid": "100001", "jb": "AUTH", "rt": "1", "tkn": token, "cod": f"jan{i}"}
        form |= {"am": "1000", "tx": "80", "sf": "500", "em": str(SESSION["email"])}
        (await sim.post("/gateway/gateway_token.aspx", data=form)).raise_for_status()
        pids.append(await add_payment(sessions, order_id=f"jan{i}", next_check_at=utcnow()))
    for _ in range(150):
        async with sessions() as s:
            open_ = await s.scalar(
                select(func.count()).where(Payment.id.in_(pids), Payment.status != "authorized")
            )
        if not open_:
            break
        await asyncio.sleep(0.1)
    assert not open_, "the janitors did not settle every payment"
    async with sessions() as s:
        moves = (
            await s.execute(
                select(PaymentEvent.payment_id, func.count())
                .where(
                    PaymentEvent.payment_id.in_(pids),
                    PaymentEvent.type == "status_changed",
                    PaymentEvent.actor == "reconciler",
                )
                .group_by(PaymentEvent.payment_id)
            )
        ).all()
    assert sorted(n for _, n in moves) == [1] * len(pids)
