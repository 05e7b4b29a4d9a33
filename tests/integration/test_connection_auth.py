"""Connection authentication (接続認証) through our API against the simulator process: with the
code on both sides a pay goes through, with a wrong or missing one (or a clock outside the
tolerance) it is refused before any charge with a readable answer; off is unchanged (issue 17)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import GatewayCallLog
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, ledger, new_session, three_ds_of
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

CODE = "it-connection-auth-code-42"


async def gateway_on(sim: httpx.AsyncClient, code: str) -> None:
    config = {"connection_auth_code": code}
    (await sim.post("/_sandbox/config", json=config)).raise_for_status()


async def pay(app: RunningApp, sim: httpx.AsyncClient) -> httpx.Response:
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    return await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})


async def sent(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as s:
        rows = (await s.execute(select(GatewayCallLog).order_by(GatewayCallLog.id))).scalars()
        return [dict(r.request) for r in rows if r.operation == "charge_token"]


async def test_the_right_code_pays_and_no_hak_is_kept(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await gateway_on(sim, CODE)
    app = await make_app(gateway_connection_auth_code=CODE)
    r = await pay(app, sim)
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    assert len(await ledger(sim)) == 1
    [request] = await sent(sessions)
    assert request["ut"].isdigit() and request["hak"] == "***"
    async with sessions() as s:
        rows = (await s.execute(select(GatewayCallLog))).scalars()
        assert all(CODE not in repr((r.request, r.response_body)) for r in rows)


@pytest.mark.parametrize("ours", ["wrong-code-0000000000", ""], ids=["wrong", "missing"])
async def test_a_wrong_or_missing_code_is_refused_readably_and_moves_no_money(
    make_app: AppFactory, sim: httpx.AsyncClient, ours: str
) -> None:
    await gateway_on(sim, CODE)
    app = await make_app(gateway_connection_auth_code=ours)
    r = await pay(app, sim)
    body = r.json()
    # Refused before any charge: a problem naming the gateway's code and where to look.
    assert r.status_code == 502, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert body["gateway_code"] == "ER001" and body["payment"]["status"] == "failed"
    assert "connection authentication" in body["detail"], body
    assert await ledger(sim) == []


async def test_a_clock_outside_the_tolerance_is_refused(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    """The gateway's clock 10 minutes ahead of ours: ut is outside its 300 s tolerance."""
    await gateway_on(sim, CODE)
    app = await make_app(gateway_connection_auth_code=CODE)
    (await sim.post("/_sandbox/clock", json={"advance_seconds": 600})).raise_for_status()
    r = await pay(app, sim)
    assert r.status_code == 502 and r.json()["gateway_code"] == "ER001", r.text
    assert await ledger(sim) == []


async def test_off_on_both_sides_is_unchanged(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    r = await pay(app, sim)
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    [request] = await sent(sessions)
    assert "ut" not in request and "hak" not in request
