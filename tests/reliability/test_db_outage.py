"""Database outage: PostgreSQL (a server of this test's own) is stopped for about ten seconds in
the middle of a kickback storm. Every kickback still gets 200; those that arrive meanwhile are
spooled to disk and applied once the database is back, by the app itself; pays fail cleanly
with a 503 and charge nothing; the app recovers without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import database_unavailable, make_engine, make_sessionmaker, utcnow
from app.kickbacks import service as kickbacks
from app.kickbacks.models import Kickback
from app.payments.models import Payment, PaymentEvent
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.reliability.support_chaos import KickbackRelay, ShopperAnswers, app_processes
from tests.support import pg
from tests.support.db import alembic, create_database, dsn
from tests.support.fixtures import KICKBACK_PATH, AppFactory, RunningApp

pytestmark = pytest.mark.reliability

PAYMENTS = 120
STORM = 18.0  # seconds of kickbacks
OUTAGE_AT, OUTAGE = 4.0, 10.0
LEDGER_STATUS = {"authorized": "authorized", "captured": "captured", "declined": "failed"}


@dataclass
class OwnDatabase:
    server: pg.PgServer
    url: str
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture
async def own_db() -> AsyncIterator[OwnDatabase]:
    """A PostgreSQL server of this test alone (stopping the shared one would break others)."""
    server = await asyncio.to_thread(pg.start_server)
    engine = None
    try:
        url = await create_database(server.url, "rp_outage")
        await asyncio.to_thread(alembic, url, "upgrade", "head")
        engine = make_engine(url, pool_size=2)
        yield OwnDatabase(server, url, make_sessionmaker(engine))
    finally:
        if engine is not None:
            await engine.dispose()
        # Stopping a server that a failed test left down fails: it is removed all the same.
        with contextlib.suppress(subprocess.CalledProcessError):
            await asyncio.to_thread(pg.destroy, server)


@dataclass
class Sent:
    query: bytes
    at: float
    status: int | None
    body: str


async def _pay_all(app: RunningApp, sim: httpx.AsyncClient, n: int) -> list[dict[str, Any]]:
    """n checkout sessions paid with rt=0: each payment waits for its kickback."""
    limit = asyncio.Semaphore(16)

    async def one(i: int) -> dict[str, Any]:
        async with limit:
            body = {**SESSION, "order_id": f"storm{i}", "job": random.choice(["AUTH", "CAPTURE"])}
            cs = (await app.merchant.post("/v1/checkout/sessions", json=body)).json()
            token = await make_token(sim, three_ds=three_ds_of(SESSION))
            r = await app.client.post(
                f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token}
            )
            assert r.status_code == 202 and r.json()["status"] == "pending", r.text
            data: dict[str, Any] = r.json()
            return data

    return await asyncio.gather(*[one(i) for i in range(n)])


@pytest.mark.timeout(300)
async def test_kickbacks_and_pays_through_a_database_outage(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    own_db: OwnDatabase,
    capsys: pytest.CaptureFixture[str],
) -> None:
    started = time.monotonic()
    relay = KickbackRelay(seed=7, hold=True)
    await relay.start()
    try:
        app = await make_app(
            database_url=own_db.url, gateway_result_mode=0, reconcile_interval_seconds=0
        )
        config = {"kickback_url": f"{relay.url}/kickback"}
        (await sim.post("/_sandbox/config", json=config)).raise_for_status()
        await _pay_all(app, sim, PAYMENTS)
        for _ in range(200):
            if len(relay.received) >= PAYMENTS:
                break
            await asyncio.sleep(0.05)
        assert len(relay.received) == PAYMENTS

        # Shoppers who will press "pay" while the database is down.
        waiting = []
        for i in range(4):
            r = await app.merchant.post(
                "/v1/checkout/sessions", json={**SESSION, "order_id": f"outage{i}"}
            )
            waiting.append(r.json())
        ledger_before = (await sim.get("/_sandbox/ledger")).json()
        outcome = await _storm(app, sim, own_db.server, relay.received, waiting)
        ledger_after_outage = outcome.pop("ledger_during")
        assert ledger_after_outage == ledger_before, "something was charged during the outage"
        recovered = await _recovered(app, own_db, outcome["sent"])
        ledger = (await sim.get("/_sandbox/ledger")).json()
        applied = await _check(own_db, outcome["sent"], ledger)

        # The app recovered by itself: ready again, and the same shoppers can pay now.
        assert (await app.client.get("/readyz")).status_code == 200
        for cs in waiting:
            token = await make_token(sim, three_ds=three_ds_of(SESSION))
            r = await app.client.post(
                f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token}
            )
            assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    finally:
        await relay.close()
    sent: list[Sent] = outcome["sent"]
    with capsys.disabled():
        print(
            f"\ndb outage: {PAYMENTS} payments, {len(sent)} kickback deliveries "
            f"({len({s.query for s in sent})} distinct) over {STORM:.0f} s, database down "
            f"{outcome['down_seconds']:.1f} s; answers {dict(Counter(s.status for s in sent))}; "
            f"{outcome['during']} arrived while it was down; inbox {applied}; "
            f"all applied {recovered:.1f} s after the storm ended; "
            f"pays during the outage: {outcome['pays']}; {time.monotonic() - started:.1f} s in all"
        )


async def _storm(
    app: RunningApp,
    sim: httpx.AsyncClient,
    server: pg.PgServer,
    kickback_queries: list[bytes],
    waiting: list[dict[str, Any]],
) -> dict[str, Any]:
    rng = random.Random(11)
    plan = [(rng.uniform(0, STORM), q) for q in kickback_queries for _ in range(rng.randint(1, 3))]
    plan.sort()
    sent: list[Sent] = []
    down: dict[str, float] = {}
    answers = ShopperAnswers()
    pays: Counter[str] = Counter()
    # A new connection per kickback, as the gateway sends them.
    client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
    t0 = time.monotonic()

    async def deliver(at: float, query: bytes) -> None:
        await asyncio.sleep(max(0.0, at - (time.monotonic() - t0)))
        sent_at = time.monotonic() - t0
        url = httpx.URL(f"{app.url}{KICKBACK_PATH}", query=query)
        try:
            r = await client.send(httpx.Request("GET", url))
            sent.append(Sent(query, sent_at, r.status_code, r.text))
        except httpx.HTTPError as exc:
            sent.append(Sent(query, sent_at, None, repr(exc)))

    async def outage() -> dict[str, Any]:
        await asyncio.sleep(OUTAGE_AT)
        await asyncio.to_thread(server.stop, "fast")
        down["from"] = time.monotonic() - t0
        await asyncio.sleep(1.0)
        tokens = [await make_token(sim, three_ds=three_ds_of(SESSION)) for _ in waiting]
        # A shopper opening the page meanwhile gets a readable page, not JSON.
        page = await app.client.get(f"/checkout/{waiting[0]['id']}")
        assert page.status_code == 503, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "システムに接続できません" in page.text, page.text
        answers.check(page, "checkout page during the outage")
        for i, (cs, token) in enumerate(zip(waiting, tokens, strict=True)):
            if i % 2:
                r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token})
                assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
                # In the page's language (Japanese here): nothing was charged.
                assert "ご請求は発生していません" in r.text, r.text
            else:
                r = await app.client.post(
                    f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token}
                )
                assert r.status_code == 503, r.text
                assert r.headers["content-type"].startswith("application/problem+json")
                assert r.json()["code"] == "database_unavailable", r.text
            answers.check(r, f"pay during the outage ({cs['id']})")
            pays[f"{r.status_code} {r.headers['content-type'].split(';')[0]}"] += 1
        ledger = (await sim.get("/_sandbox/ledger")).json()
        await asyncio.sleep(max(0.0, OUTAGE_AT + OUTAGE - (time.monotonic() - t0)))
        await asyncio.to_thread(server.start)
        down["to"] = time.monotonic() - t0
        return {"ledger_during": ledger}

    try:
        result, *_ = await asyncio.gather(outage(), *[deliver(at, q) for at, q in plan])
    finally:
        await client.aclose()
    assert answers.problems == [], answers.problems
    during = [s for s in sent if down["from"] <= s.at <= down["to"]]
    assert during, "no kickback arrived while the database was down"
    bad = [s for s in sent if s.status != 200 or not s.body]
    assert bad == [], bad[:5]
    return {
        **result,
        "sent": sent,
        "during": len(during),
        "down_seconds": down["to"] - down["from"],
        "pays": dict(pays),
    }


async def _recovered(app: RunningApp, db: OwnDatabase, sent: list[Sent]) -> float:
    """Waits (no operator action) until every delivered kickback is in the inbox and applied
    and the spool is empty; returns how long that took."""
    spool_dir = app.settings.spool_dir
    start = time.monotonic()
    deadline = start + 90
    while time.monotonic() < deadline:
        async with db.sessions() as session:
            rows = list((await session.execute(select(Kickback.status))).scalars())
        files = list(spool_dir.glob("kickbacks-*")) if spool_dir.exists() else []
        if len(rows) >= len(sent) and "received" not in rows and "error" not in rows and not files:
            return time.monotonic() - start
        await asyncio.sleep(0.5)
    raise AssertionError(
        f"not recovered after 90 s: {len(rows)} of {len(sent)} kickbacks in the inbox, "
        f"{Counter(rows)}, spool files {files}"
    )


async def _check(db: OwnDatabase, sent: list[Sent], ledger: list[dict[str, Any]]) -> dict[str, Any]:
    async with db.sessions() as session:
        inbox = list((await session.execute(select(Kickback))).scalars())
        payments = list((await session.execute(select(Payment))).scalars())
        moves = Counter(
            (pid, to)
            for pid, to in (
                await session.execute(
                    select(PaymentEvent.payment_id, PaymentEvent.to_status).where(
                        PaymentEvent.from_status.is_distinct_from(PaymentEvent.to_status)
                    )
                )
            ).all()
        )
    # None lost: every copy that got its 200 is in the inbox, once.
    assert Counter(k.raw_query for k in inbox) == Counter(s.query for s in sent)
    spooled = [k for k in inbox if k.spool_id is not None]
    assert spooled, "nothing was spooled: the outage did not happen during the storm"
    statuses = Counter(k.status for k in inbox)
    assert set(statuses) <= {"applied", "duplicate"}, statuses
    # None applied twice: one applied row per distinct kickback, one move per payment.
    applied = Counter(k.raw_query for k in inbox if k.status == "applied")
    assert applied == Counter({s.query for s in sent})
    by_gid = {row["gid"]: row for row in ledger}
    storm = [p for p in payments if (p.order_id or "").startswith("storm")]
    assert len(storm) == PAYMENTS
    for p in storm:
        assert p.gid is not None and p.gid in by_gid, p.id
        assert p.status == LEDGER_STATUS[by_gid[p.gid]["status"]], (p.id, p.status)
        assert moves[(p.id, p.status)] == 1, (p.id, p.status)
    return {"rows": len(inbox), "spooled": len(spooled), **statuses}


def test_spool_is_synced_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kickback is on disk before we answer 200: the file, and for a new file its
    directory entry, are fsynced."""
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    spool_dir = tmp_path / "spool"
    raw = kickbacks.RawKickback("GET", "127.0.0.1", b"gid=1&rst=1", b"", None, utcnow())
    kickbacks.spool(spool_dir, raw)
    kickbacks.spool(spool_dir, raw)
    [path] = spool_dir.glob("kickbacks-*.jsonl")
    assert synced == [str(path), str(spool_dir), str(path)]
    lines = path.read_text().splitlines()
    assert [kickbacks.RawKickback.from_json(line).raw_query for line in lines] == [
        b"gid=1&rst=1"
    ] * 2


async def test_a_postgresql_restart_answers_503_never_500(
    own_db: OwnDatabase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PostgreSQL restarted while session creations run on two app processes: each answer is a
    success or a clean 503 with Retry-After, never a 500 and never a dropped connection (a
    pooled connection the restart closed is "database unavailable", asyncpg's `connection is
    closed` included); the pools recover by themselves (pool_pre_ping)."""
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    envs = [
        {"RECONCILE_INTERVAL_SECONDS": "0", "SPOOL_DIR": str(tmp_path / f"spool-{i}")}
        for i in range(2)
    ]
    async with app_processes(envs, db_url=own_db.url, log_dir=log_dir, name="restart-app") as apps:

        async def create(i: int, tag: str, delay: float = 0.0) -> int | str:
            await asyncio.sleep(delay)
            try:
                r = await apps[i % 2].merchant.post(
                    "/v1/checkout/sessions", json={**SESSION, "order_id": f"{tag}{i}"}
                )
            except httpx.HTTPError as exc:
                return type(exc).__name__  # the connection was dropped: no answer at all
            if r.status_code == 503:
                assert r.headers["retry-after"], r.headers
                assert r.json()["code"] == "database_unavailable", r.text
            return r.status_code

        async def restart() -> None:
            await asyncio.sleep(0.3)
            await asyncio.to_thread(own_db.server.stop, "fast")
            await asyncio.to_thread(own_db.server.start)

        # Fill the pools with connections the restart will close.
        assert set(await asyncio.gather(*[create(i, "warm") for i in range(30)])) == {201}
        *answers, _ = await asyncio.gather(
            *[create(i, "restart", i * 0.03) for i in range(40)], restart()
        )
        after = [await create(i, "after") for i in range(10)]
    statuses = Counter(answers)
    with capsys.disabled():
        print(
            f"\nFIGURE postgresql restart: 40 session creations on 2 processes -> "
            f"{dict(statuses)}; after it: {dict(Counter(after))}"
        )
    assert statuses[500] == 0, statuses
    assert set(statuses) <= {201, 503}, statuses
    assert after == [201] * 10


async def test_every_way_a_closed_connection_shows_is_database_unavailable(
    own_db: OwnDatabase, capsys: pytest.CaptureFixture[str]
) -> None:
    """The errors a connection closed under the app really raises (its backend terminated, as a
    restart does), each recognised as "database unavailable" (a 503, not a 500)."""
    errors: dict[str, BaseException] = {}
    async with own_db.sessions() as session:
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        conn = await asyncpg.connect(dsn(own_db.url))
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        for name in ("first statement", "next statement", "commit"):
            try:
                if name == "commit":
                    await session.commit()
                else:
                    await session.execute(text("SELECT 1"))
            except Exception as exc:
                errors[name] = exc
    closed = await asyncpg.connect(dsn(own_db.url))
    await closed.close()
    try:
        await closed.execute("SELECT 1")
    except Exception as exc:
        errors["asyncpg on a closed connection"] = exc
    assert len(errors) == 4, errors
    missed = {
        name: repr(exc)[:120] for name, exc in errors.items() if not database_unavailable(exc)
    }
    with capsys.disabled():
        print(f"\nFIGURE closed-connection errors not seen as an outage: {len(missed)} of 4")
    assert not missed, missed
