"""Fixtures shared by the integration and reliability tiers: a migrated PostgreSQL database, the
standalone gateway simulator as a real process over HTTP, the app under a real uvicorn."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import make_engine, make_sessionmaker
from app.main import create_app
from tests.support import sbps
from tests.support.db import alembic, create_database
from tests.support.http import wait_http
from tests.support.logs import log_file, mirror_app_log
from tests.support.pg import free_port

ROOT = Path(__file__).resolve().parents[2]
MERCHANT_KEY = "sk_it_merchant_key_1"
OPS_KEY = "sk_it_ops_key_000001"
# The trusted kickback path of every app the tests start (the gateway's 決済結果通知URL).
KICKBACK_SECRET = "it-kickback-secret-0123456789abcdef"
KICKBACK_PATH = f"/kickback/{KICKBACK_SECRET}"
TABLES = (
    "billing_card_registrations, billing_card_sessions, "
    "payment_events, gateway_calls, kickbacks, idempotency_keys, cards, payments, "
    "customer_events, "
    "customers, checkout_sessions, velocity_failures, sweep_cursors, "
    "events, event_deliveries, delivery_attempts, webhook_endpoints, ops_sessions, "
    "script_checks, script_approvals, script_states, page_checks, watch_leases, csp_reports"
)


@contextmanager
def _simulator_process(module: str, log: Path, env: dict[str, str]) -> Iterator[str]:
    """`python -m <module>` on a free port, as operators run it; its URL once it answers."""
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/_sandbox/ledger")
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="session")
def simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m app.sandbox` as its own process, as operators run it."""
    log = log_file("simulator", tmp_path_factory.mktemp("sim"))
    with _simulator_process("app.sandbox", log, {"SANDBOX_AID": "100001"}) as url:
        yield url


@pytest.fixture
async def sim(simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the simulator, reset to a clean state for each test."""
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as client:
        r = await client.post("/_sandbox/reset")
        r.raise_for_status()
        yield client
        await client.post("/_sandbox/reset")


@pytest.fixture(scope="session")
def sbps_simulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m app.sandbox.sbps` as its own process, with the test merchant's ids and hash
    key (tests/support/sbps.py) and short waits for the slow and timeout cards."""
    log = log_file("sbps-simulator", tmp_path_factory.mktemp("sbps"))
    env = {
        "SBPS_SANDBOX_MERCHANT_ID": sbps.MERCHANT_ID,
        "SBPS_SANDBOX_SERVICE_ID": sbps.SERVICE_ID,
        "SBPS_SANDBOX_HASH_KEY": sbps.HASH_KEY,
    }
    with _simulator_process("app.sandbox.sbps", log, env) as url:
        yield url


@pytest.fixture
async def sbps_sim(sbps_simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client on the SBPS simulator, reset to a clean state for each test."""
    async with httpx.AsyncClient(base_url=f"{sbps_simulator_url}/", timeout=10) as client:
        (await client.post("_sandbox/reset")).raise_for_status()
        yield client
        await client.post("_sandbox/reset")


@pytest.fixture(scope="session")
async def db_url(pg_url: str) -> str:
    url = await create_database(pg_url, "rp_it")
    alembic(url, "upgrade", "head")
    return url


@pytest.fixture(scope="session")
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Committed data (concurrency tests need real commits); tables emptied per test."""
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE"))
    return make_sessionmaker(engine)


@dataclass
class RunningApp:
    app: FastAPI
    url: str
    client: httpx.AsyncClient  # no credentials
    merchant: httpx.AsyncClient
    ops: httpx.AsyncClient
    settings: Settings


AppFactory = Callable[..., Awaitable[RunningApp]]


@pytest.fixture
async def make_app(
    db_url: str, simulator_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[AppFactory]:
    """Starts the app under a real uvicorn on 127.0.0.1, against the simulator process."""
    started: list[tuple[uvicorn.Server, asyncio.Task[None], list[httpx.AsyncClient]]] = []

    async def factory(*, tracer_provider: Any = None, **overrides: Any) -> RunningApp:
        port = free_port()
        values: dict[str, Any] = {
            "database_url": db_url,
            "gateway_mode": "sandbox",
            "gateway_base_url": simulator_url,
            "search_api_base_url": f"{simulator_url}/api",
            "api_keys": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
            "public_base_url": f"http://127.0.0.1:{port}",
            "gateway_read_timeout": 3.0,
            "spool_dir": tmp_path / "spool",
            "kickback_allowed_ips": "127.0.0.1",
            "kickback_secret": KICKBACK_SECRET,
            # The tests play the proxy in front of the app: X-Forwarded-For from 127.0.0.1 is
            # believed, as `python -m app serve` does with FORWARDED_ALLOW_IPS=127.0.0.1.
            "forwarded_allow_ips": "127.0.0.1",
            # The tests run the script watcher's passes themselves (tests/integration/
            # test_script_watch.py); a pass at every app's start would only add noise.
            "script_watch_interval_seconds": 0,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        app = create_app(settings, tracer_provider=tracer_provider)
        mirror_app_log()
        trusted = settings.trusted_proxies
        server = uvicorn.Server(
            # Keep-alive longer than any pause of the test's clients (as behind a load
            # balancer): a connection uvicorn closes just as a client reuses it fails with a
            # ReadError before the request is read (seen in test_db_outage on a busy machine).
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="on",
                timeout_keep_alive=120,
                proxy_headers=bool(trusted),
                forwarded_allow_ips=trusted or None,
            )
        )
        task = asyncio.create_task(server.serve())
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}"
        clients = [
            httpx.AsyncClient(base_url=url, timeout=30),
            httpx.AsyncClient(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {MERCHANT_KEY}"}
            ),
            httpx.AsyncClient(
                base_url=url, timeout=30, headers={"Authorization": f"Bearer {OPS_KEY}"}
            ),
        ]
        started.append((server, task, clients))
        return RunningApp(app, url, clients[0], clients[1], clients[2], settings)

    yield factory
    for server, task, clients in started:
        for c in clients:
            await c.aclose()
        server.should_exit = True
        await task
