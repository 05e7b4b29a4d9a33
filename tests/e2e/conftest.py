"""End-to-end fixtures: the app under a real uvicorn process (in-process sandbox gateway, as a
newcomer runs it, but on PostgreSQL), and a real headless Chromium driven by Playwright."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.db import alembic, create_database
from tests.support.http import wait_http
from tests.support.logs import log_dir
from tests.support.pg import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
MERCHANT_KEY = "sk_e2e_merchant_key"
OPS_KEY = "sk_e2e_ops_key_00001"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Server:
    url: str
    db_url: str
    log_path: Path
    merchant: httpx.AsyncClient
    ops: httpx.AsyncClient
    sim: httpx.AsyncClient


@pytest.fixture(scope="session")
async def e2e_db(pg_url: str) -> str:
    url = await create_database(pg_url, "rp_e2e")
    alembic(url, "upgrade", "head")
    return url


def _start(
    db_url: str, log_path: Path, **env_overrides: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    # The caller's own gateway, page and branding settings stay out (a fixture names its own).
    ignored = ("GATEWAY_", "CHECKOUT_", "SHOP_")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(ignored)},
        "DATABASE_URL": db_url,
        "API_KEYS": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "KICKBACK_ALLOWED_IPS": "127.0.0.1",
        "SPOOL_DIR": str(log_path.parent / "spool"),
        **env_overrides,
    }
    log = log_path.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # A loaded machine (two cores, other suites) can take a while to import the app.
        wait_http(f"{url}/healthz", timeout=60)
    except BaseException:
        proc.terminate()  # not left running when it came up too late
        proc.wait(10)
        raise
    return proc, url


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = log_dir()
    if shared is None:
        return tmp_path_factory.mktemp("e2e-logs")
    folder = shared / "e2e"
    folder.mkdir(exist_ok=True)
    return folder


async def _server(e2e_db: str, server_logs: Path, name: str, **env: str) -> AsyncIterator[Server]:
    log_path = server_logs / f"{name}.log"
    proc, url = _start(e2e_db, log_path, **env)
    clients = [
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {MERCHANT_KEY}"}),
        httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {OPS_KEY}"}),
        httpx.AsyncClient(base_url=f"{url}/sandbox"),
    ]
    try:
        yield Server(url, e2e_db, log_path, *clients)
    finally:
        for c in clients:
            await c.aclose()
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="session")
async def server(e2e_db: str, server_logs: Path) -> AsyncIterator[Server]:
    async for s in _server(e2e_db, server_logs, "custom", CHECKOUT_MODE="custom"):
        yield s


@pytest.fixture(scope="session")
async def popup_server(e2e_db: str, server_logs: Path) -> AsyncIterator[Server]:
    async for s in _server(e2e_db, server_logs, "popup", CHECKOUT_MODE="popup"):
        yield s


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        await b.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900})
    pg = await context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "Content Security" in m.text else None
        ),
    )
    yield pg
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-final.png"), full_page=True)
    await context.close()
    assert not errors, f"page errors / CSP violations: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Iterator[Path]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield ARTIFACTS


async def create_session(server: Server, **overrides: Any) -> dict[str, Any]:
    body = {
        "amount": 1000,
        "tax": 100,
        "shipping": 480,
        "job": "AUTH",
        "email": "hanako@example.com",
        "success_url": f"{server.url}/healthz?paid=1",
        "cancel_url": f"{server.url}/healthz?canceled=1",
        **overrides,
    }
    r = await server.merchant.post("/v1/checkout/sessions", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data
