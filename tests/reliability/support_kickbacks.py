"""Helpers for the kickback attack tests: two app replicas (rt=1 and rt=0) on one database
and the standalone simulator, kickbacks held by a relay and delivered when the test says,
and the simulator's ledger as the judge of what was charged."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import GatewayCallLog
from app.kickbacks.models import Kickback
from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.reliability.support_chaos import AppProcess, KickbackRelay, app_processes

LEDGER_STATUS = {"authorized": "authorized", "captured": "captured", "declined": "failed"}
# Where a kickback may end for good (deferred ones wait for a later search).
SETTLED = ("applied", "duplicate", "unmatched", "flagged", "invalid", "deferred")


@contextlib.asynccontextmanager
async def replicas(
    *, db_url: str, simulator_url: str, tmp_path: Path, allowed_ips: str, name: str
) -> AsyncIterator[list[AppProcess]]:
    """[rt=1 replica, rt=0 replica] on one database, against the simulator process."""
    common = {
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "VELOCITY_MAX_FAILURES_PER_IP": "0",
        "KICKBACK_ALLOWED_IPS": allowed_ips,
    }
    envs = [
        {**common, "GATEWAY_RESULT_MODE": mode, "SPOOL_DIR": str(tmp_path / f"spool-{mode}")}
        for mode in ("1", "0")
    ]
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    async with app_processes(envs, db_url=db_url, log_dir=log_dir, name=name) as apps:
        yield apps


@contextlib.asynccontextmanager
async def held_kickbacks(sim: httpx.AsyncClient) -> AsyncIterator[KickbackRelay]:
    """The simulator's kickbacks go to a relay that only collects them."""
    relay = KickbackRelay(seed=1, hold=True)
    await relay.start()
    try:
        config = {"kickback_url": f"{relay.url}/kickback"}
        (await sim.post("/_sandbox/config", json=config)).raise_for_status()
        yield relay
    finally:
        await relay.close()


async def wait_held(relay: KickbackRelay, n: int) -> list[bytes]:
    for _ in range(200):
        if len(relay.received) >= n:
            return list(relay.received)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(relay.received)} kickbacks held, {n} expected")


def params(query: bytes) -> dict[str, str]:
    return dict(parse_qsl(query.decode(), keep_blank_values=True))


async def deliver(
    url: str, path: str, query: bytes | str, headers: dict[str, str] | None = None
) -> httpx.Response:
    """One kickback on a new connection, as the gateway sends them."""
    raw = query.encode() if isinstance(query, str) else query
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.send(
            httpx.Request("GET", httpx.URL(f"{url}{path}", query=raw), headers=headers)
        )
    assert r.status_code == 200 and r.text, (r.status_code, r.text)
    return r


async def processed(sessions: async_sessionmaker[AsyncSession], n: int) -> list[Kickback]:
    """Waits until at least n kickbacks are stored and none is waiting to be applied."""
    rows: list[Kickback] = []
    for _ in range(300):
        async with sessions() as session:
            rows = list((await session.execute(select(Kickback).order_by(Kickback.id))).scalars())
        if len(rows) >= n and all(k.status in SETTLED for k in rows):
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError([(k.id, k.status) for k in rows])


async def new_session(app: AppProcess, order_id: str, amount: int = 1000) -> dict[str, Any]:
    body = {
        "amount": amount,
        "tax": 80,
        "shipping": 500,
        "job": "CAPTURE",
        "order_id": order_id,
        "email": "taro@example.com",
    }
    r = await app.merchant.post("/v1/checkout/sessions", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return {**body, **data}


async def pay(
    app: AppProcess, sim: httpx.AsyncClient, cs: dict[str, Any], card: str = cards.CARD_OK
) -> httpx.Response:
    three_ds = {
        "am": str(cs["amount"]),
        "tx": str(cs["tax"]),
        "sf": str(cs["shipping"]),
        "em": cs["email"],
    }
    token = await make_token(sim, card=card, three_ds=three_ds)
    return await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})


async def ledger(sim: httpx.AsyncClient, cod: str | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sim.get("/_sandbox/ledger")).json()
    return [r for r in rows if cod is None or r["cod"] == cod]


async def charged(sim: httpx.AsyncClient, cod: str) -> list[dict[str, Any]]:
    return [r for r in await ledger(sim, cod) if r["status"] in ("authorized", "captured")]


async def payments_of(sessions: async_sessionmaker[AsyncSession], order_id: str) -> list[Payment]:
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(Payment).where(Payment.order_id == order_id).order_by(Payment.created_at)
                )
            ).scalars()
        )


async def mismatches(
    sessions: async_sessionmaker[AsyncSession], sim: httpx.AsyncClient, order_id: str
) -> list[str]:
    """Our payments of the order against the ledger's rows of its cod, gid by gid."""
    rows = await ledger(sim, order_id)
    ours = await payments_of(sessions, order_id)
    out: list[str] = []
    if {p.gid for p in ours if p.gid is not None} != {r["gid"] for r in rows}:
        out.append(f"gids: ours {[p.gid for p in ours]}, ledger {[r['gid'] for r in rows]}")
    by_gid = {r["gid"]: r for r in rows}
    for p in ours:
        want = LEDGER_STATUS[by_gid[p.gid]["status"]] if p.gid in by_gid else "failed"
        if p.status != want or p.needs_attention:
            out.append(f"{p.id} gid {p.gid} is {p.status}, the ledger says {want}")
    return out


async def search_calls(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Charges searches the apps made (each look-up starts with one `search_order`)."""
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(GatewayCallLog)
            .where(GatewayCallLog.operation == "search_order")
        )
    return int(count or 0)
