"""Card-testing limits hold under concurrency and behind a proxy: many declined pays from one
address at once, on two app processes, reach the gateway at most `limit` times (attempts in
flight are reserved before the call, serialized per key); on SQLite too. The client address is
the connection's unless a configured proxy says otherwise: a rotating X-Forwarded-For from
anyone else changes nothing, and behind the proxy distinct shoppers stay distinct."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import make_engine, make_sessionmaker
from app.sandbox import cards
from app.sandbox.testing import make_token
from app.velocity import PayFailure
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.reliability.support_chaos import SERVE, AppProcess, ForwardingProxy, app_processes
from tests.support.db import alembic, gateway_call_count
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.reliability


def _common(simulator_url: str, limit: int, tmp_path: Path, i: int) -> dict[str, str]:
    return {
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "VELOCITY_MAX_FAILURES_PER_IP": str(limit),
        "VELOCITY_MAX_FAILURES_PER_CUSTOMER": "0",
        "SPOOL_DIR": str(tmp_path / f"spool-{i}"),
    }


async def _open_sessions(merchant: httpx.AsyncClient, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        r = await merchant.post("/v1/checkout/sessions", json=SESSION)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def _tokens(sim: httpx.AsyncClient, n: int, card: str = cards.CARD_DECLINE_G12) -> list[str]:
    return [await make_token(sim, card=card, three_ds=three_ds_of(SESSION)) for _ in range(n)]


async def _pay(
    client: httpx.AsyncClient, cs_id: str, token: str, headers: dict[str, str] | None = None
) -> int:
    r = await client.post(
        f"/v1/checkout/sessions/{cs_id}/pay", json={"token": token}, headers=headers or {}
    )
    assert r.status_code in (402, 429), r.text
    return r.status_code


async def test_concurrent_declines_from_one_address_stop_at_the_limit(
    db_url: str,
    simulator_url: str,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    limit, n = 20, 60
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    envs = [_common(simulator_url, limit, tmp_path, i) for i in range(2)]
    async with app_processes(envs, db_url=db_url, log_dir=log_dir, name="velocity-app") as apps:
        ids = await _open_sessions(apps[0].merchant, n)
        tokens = await _tokens(sim, n)
        statuses = await asyncio.gather(
            *[_pay(apps[i % 2].client, ids[i], tokens[i]) for i in range(n)]
        )
    calls = await gateway_call_count(sessions)
    answers = Counter(statuses)
    async with sessions() as s:
        sql = "SELECT scope, in_flight_until IS NOT NULL FROM velocity_failures"
        rows = Counter((scope, bool(in_flight)) for scope, in_flight in await s.execute(text(sql)))
    with capsys.disabled():
        print(
            f"\nFIGURE {n} concurrent declined pays from one address, limit {limit}, 2 "
            f"processes: {calls} reached the gateway; answers {dict(answers)}; rows {dict(rows)}"
        )
    assert calls <= limit, calls
    assert answers[402] == calls and answers[429] == n - calls, answers
    # Every reservation was settled: the declines are failures, nothing is left in flight.
    assert rows == {("ip", False): calls}, rows


async def test_the_limit_holds_on_sqlite_too(
    make_app: AppFactory, sim: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The single-process default: the reservation's INSERT takes SQLite's write lock first."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'rp.sqlite3'}"
    await asyncio.to_thread(alembic, url, "upgrade", "head")
    limit, n = 5, 20
    app = await make_app(
        database_url=url, velocity_max_failures_per_ip=limit, velocity_max_failures_per_customer=0
    )
    ids = await _open_sessions(app.merchant, n)
    tokens = await _tokens(sim, n)
    statuses = await asyncio.gather(*[_pay(app.client, ids[i], tokens[i]) for i in range(n)])
    engine = make_engine(url)
    try:
        calls = await gateway_call_count(make_sessionmaker(engine))
        async with make_sessionmaker(engine)() as s:
            failures = await s.scalar(select(func.count()).select_from(PayFailure))
    finally:
        await engine.dispose()
    assert calls <= limit, calls
    assert Counter(statuses) == {402: calls, 429: n - calls}
    assert failures == calls


async def _declines(
    app: AppProcess,
    sim: httpx.AsyncClient,
    n: int,
    client: httpx.AsyncClient,
    headers: Any = None,
) -> Counter[int]:
    ids = await _open_sessions(app.merchant, n)
    tokens = await _tokens(sim, n)
    out: Counter[int] = Counter()
    for i in range(n):
        out[await _pay(client, ids[i], tokens[i], headers(i) if headers else None)] += 1
    return out


async def test_x_forwarded_for_counts_only_from_the_configured_proxy(
    db_url: str,
    simulator_url: str,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`python -m app serve` twice: one trusting no proxy (the default), one trusting a proxy
    on 127.0.0.1 that sets X-Forwarded-For as deploy/nginx.conf does (overwriting it with the
    address it sees). Shoppers reach the proxy from distinct loopback addresses."""
    limit = 10
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    direct = _common(simulator_url, limit, tmp_path, 0)
    proxied = {**_common(simulator_url, limit, tmp_path, 1), "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    async with app_processes(
        [direct, proxied], db_url=db_url, log_dir=log_dir, name="xff-app", command=SERVE
    ) as (alone, behind):
        # 1. No trusted proxy: a rotating X-Forwarded-For does not make new shoppers.
        rotating = await _declines(
            alone,
            sim,
            30,
            alone.client,
            headers=lambda i: {"X-Forwarded-For": f"203.0.113.{i + 1}"},
        )
        # 2. Behind the proxy: shopper A and shopper B are two addresses; A's own
        #    X-Forwarded-For is not believed.
        proxy = ForwardingProxy(behind.url)
        await proxy.start()
        try:
            a, b = proxy.client(source="127.0.0.2"), proxy.client(source="127.0.0.3")
            try:
                shopper_a = await _declines(
                    behind,
                    sim,
                    limit + 5,
                    a,
                    headers=lambda i: {"X-Forwarded-For": f"198.51.100.{i + 1}"},
                )
                cs = (await _open_sessions(behind.merchant, 1))[0]
                [ok] = await _tokens(sim, 1, cards.CARD_OK)
                r = await b.post(f"/v1/checkout/sessions/{cs}/pay", json={"token": ok})
                shopper_b = r.status_code
            finally:
                await a.aclose()
                await b.aclose()
        finally:
            await proxy.close()
    async with sessions() as s:
        keys = Counter((await s.execute(select(PayFailure.key))).scalars())
    with capsys.disabled():
        print(
            f"\nFIGURE X-Forwarded-For, no trusted proxy: 30 declines with a rotating header -> "
            f"{dict(rotating)}; behind the proxy: shopper A (own header ignored) "
            f"{dict(shopper_a)}, shopper B -> {shopper_b}; failures by address {dict(keys)}"
        )
    assert rotating == {402: limit, 429: 30 - limit}, rotating
    assert shopper_a == {402: limit, 429: 5}, shopper_a
    assert shopper_b == 200
    assert keys == {"127.0.0.1": limit, "127.0.0.2": limit}, keys
