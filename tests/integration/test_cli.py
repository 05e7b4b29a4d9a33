"""`python -m app …` as an operator runs it: real processes against PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import parse_api_keys
from app.db import make_engine, utcnow
from app.kickbacks import service as kickbacks
from app.kickbacks.models import Kickback
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.support.db import create_database
from tests.support.fixtures import ROOT, AppFactory

pytestmark = pytest.mark.integration


async def run_cli(*args: str, **env: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        *args,
        cwd=ROOT,
        env={**os.environ, "LOG_LEVEL": "WARNING", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_migrate_brings_an_empty_database_to_head(pg_url: str) -> None:
    url = await create_database(pg_url, "rp_cli")
    code, out = await run_cli("migrate", DATABASE_URL=url)
    assert code == 0, out
    assert "migrate: done" in out
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            tables = await conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_name='payments'")
            )
    finally:
        await engine.dispose()
    heads = sorted(p.name for p in (ROOT / "migrations" / "versions").glob("0*.py"))
    assert version is not None and heads[-1].startswith(str(version)[:4])
    assert tables == 1
    again, out = await run_cli("migrate", DATABASE_URL=url)  # idempotent
    assert again == 0, out


async def test_create_api_key_prints_a_usable_entry() -> None:
    code, out = await run_cli("create-api-key", "--role", "ops")
    assert code == 0, out
    entry = out.splitlines()[0]
    [key] = parse_api_keys(entry)
    assert key.role == "ops" and entry.endswith(":ops")
    _, other = await run_cli("create-api-key", "--role", "ops")
    assert other.splitlines()[0] != entry
    bad, out = await run_cli("create-api-key", "--role", "admin")
    assert bad == 2 and "invalid choice" in out


async def test_show_payment_text_and_json(
    make_app: AppFactory, sim: httpx.AsyncClient, db_url: str
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    paid = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    pid = paid.json()["id"]

    code, out = await run_cli("show-payment", pid, DATABASE_URL=db_url)
    assert code == 0, out
    assert f"{pid}  authorized" in out and "charge_token success" in out
    assert "status_changed pending -> authorized by gateway" in out
    assert token not in out

    code, out = await run_cli("show-payment", pid, "--json", DATABASE_URL=db_url)
    assert code == 0, out
    detail = json.loads(out[out.index("{") :])
    assert detail["id"] == pid and detail["gateway_calls"][0]["operation"] == "charge_token"

    code, out = await run_cli("show-payment", "pay_nope", DATABASE_URL=db_url)
    assert code == 1 and "no payment 'pay_nope'" in out


async def test_replay_spool_moves_spooled_kickbacks_once(
    sessions: async_sessionmaker[AsyncSession], db_url: str, simulator_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    for gid in (111, 222):
        kickbacks.spool(
            spool_dir,
            kickbacks.RawKickback(
                method="GET",
                source_ip="127.0.0.1",
                raw_query=f"gid={gid}&rst=1&cod=nobody&ta=1".encode(),
                raw_body=b"",
                content_type=None,
                received_at=utcnow(),
            ),
        )
    env = {
        "DATABASE_URL": db_url,
        "SPOOL_DIR": str(spool_dir),
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "KICKBACK_ALLOWED_IPS": "127.0.0.1",
    }
    code, out = await run_cli("replay-spool", **env)
    assert code == 0, out
    assert "2 kickbacks moved into the inbox (applied)" in out
    async with sessions() as s:
        rows = list((await s.execute(select(Kickback).order_by(Kickback.id))).scalars())
    assert [r.gid for r in rows] == [111, 222]
    assert all(r.spool_id and r.status == "unmatched" for r in rows)
    assert not list(spool_dir.glob("kickbacks-*"))
    code, out = await run_cli("replay-spool", **env)  # nothing left: nothing twice
    assert code == 0 and "0 kickbacks moved" in out


async def test_reconcile_with_the_in_process_sandbox_and_no_server_says_what_to_do(
    db_url: str,
) -> None:
    # The in-process sandbox lives inside the server: without one answering, a clear message.
    code, out = await run_cli(
        "reconcile", "--server", "http://127.0.0.1:9", DATABASE_URL=db_url, GATEWAY_BASE_URL=""
    )
    assert code == 2 and "none answers at http://127.0.0.1:9" in out
    assert "scripts/serve" in out and "GATEWAY_BASE_URL" in out


async def test_events_list_show_and_redeliver_from_a_shell(
    make_app: AppFactory, sim: httpx.AsyncClient, db_url: str
) -> None:
    from tests.support.receiver import Receiver

    receiver = Receiver()
    await receiver.start()
    try:
        app = await make_app(webhook_poll_seconds=0.1)
        r = await app.merchant.post("/v1/webhook-endpoints", json={"url": receiver.url})
        assert r.status_code == 201, r.text
        cs = await new_session(app, order_id="clievents1")
        token = await make_token(sim, three_ds=three_ds_of(SESSION))
        paid = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
        pid = paid.json()["id"]
        await receiver.wait_for(2)

        code, out = await run_cli("events", "list", "--object", pid, DATABASE_URL=db_url)
        assert code == 0, out
        [line] = [x for x in out.splitlines() if pid in x]
        assert "payment.authorized" in line
        event_id = line.split()[2]
        code, out = await run_cli("events", "show", event_id, DATABASE_URL=db_url)
        assert code == 0, out
        shown = json.loads(out[out.index("{") :])
        assert shown["deliveries"][0]["status"] == "delivered"

        code, out = await run_cli("events", "redeliver", event_id, DATABASE_URL=db_url)
        assert code == 0 and "queued again to 1 endpoint(s)" in out, out
        got = await receiver.wait_for(3)
        assert got[-1].event["id"] == event_id  # the running server sent it again

        code, out = await run_cli("events", "redeliver", f"evt_{'0' * 32}", DATABASE_URL=db_url)
        assert code == 1 and "No event" in out
        code, out = await run_cli("events", "rewrap-secrets", DATABASE_URL=db_url)
        assert code == 0 and "1 endpoint secret(s) re-encrypted" in out
    finally:
        await receiver.stop()
