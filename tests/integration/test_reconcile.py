"""Reconciliation against the simulator's charges search: unknown and stale payments are settled
to what the gateway's ledger says, on a bounded schedule, by any number of janitors at once."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.gateway.base import Outcome, PaymentGateway, TokenCharge
from app.payments.models import Payment, PaymentEvent
from app.payments.service import cod_for
from app.reconcile import orphans
from app.reconcile.models import SweepCursor
from app.reconcile.service import SCHEDULE, reconcile_due
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, ledger, new_session, three_ds_of
from tests.integration.test_operations import REAUTH, detail, paid
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
THREE_DS = three_ds_of(SESSION)


async def charge_at_gateway(gateway: PaymentGateway, sim: httpx.AsyncClient, cod: str) -> int:
    """A real AUTH of 1,580 yen in the simulator's ledger, with `cod` as order id."""
    token = await make_token(sim, three_ds=THREE_DS)
    result = await gateway.charge_token(
        TokenCharge(
            job="AUTH",
            token=token,
            amount=1000,
            tax=80,
            shipping=500,
            order_id=cod,
            email=str(SESSION["email"]),
        )
    )
    assert result.outcome == Outcome.SUCCESS and result.charge_id
    return result.charge_id


async def add_payment(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: str = "unknown",
    order_id: str | None = None,
    gid: int | None = None,
    created_at: datetime | None = None,
    next_check_at: datetime | None = None,
    unsent: bool = False,
) -> str:
    now = utcnow()
    async with sessions() as session:
        pid = new_id("pay")
        p = Payment(
            id=pid,
            kind="checkout",
            status=status,
            job="AUTH",
            order_id=order_id,
            cod=cod_for(order_id, pid),
            amount=1000,
            tax=80,
            shipping=500,
            gid=gid,
            result_mode=1,
            check_attempts=0,
            needs_attention=False,
            created_at=created_at or now,
            next_check_at=next_check_at,
            unsent=unsent,
        )
        session.add(p)
        await session.commit()
        return p.id


async def load(sessions: async_sessionmaker[AsyncSession], pid: str) -> Payment:
    async with sessions() as session:
        p = await session.get(Payment, pid)
        assert p is not None
        return p


async def reconcile_now(app: RunningApp, **body: Any) -> dict[str, Any]:
    r = await app.ops.post("/v1/reconciliations", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_timeout_during_a_charge_is_settled_to_the_ledger(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app(gateway_read_timeout=1.0, reconcile_interval_seconds=0)
    (await sim.post("/_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    cs = await new_session(app)
    token = await make_token(sim, card=cards.CARD_TIMEOUT, three_ds=THREE_DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 202 and r.json()["status"] == "unknown"
    pid = r.json()["id"]
    [row] = await ledger(sim)
    assert row["status"] == "authorized"

    summary = await reconcile_now(app)
    assert summary["settled"] == 1 and summary["results"][0]["payment_id"] == pid
    p = await detail(app, pid)
    assert p["status"] == "authorized" and p["gid"] == row["gid"] and not p["needs_attention"]
    [moved] = [e for e in p["events"] if e["to_status"] == "authorized"]
    assert moved["actor"] == "reconciler" and moved["data"]["source"] == "search"
    session = (await app.merchant.get(f"/v1/checkout/sessions/{cs['id']}")).json()
    assert session["status"] == "completed" and session["payment_status"] == "authorized"
    # Nothing left to do.
    assert (await reconcile_now(app))["checked"] == 0


async def test_timeout_during_a_declined_charge_is_settled_failed(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app(gateway_read_timeout=1.0, reconcile_interval_seconds=0)
    (await sim.post("/_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    (await sim.post("/_sandbox/faults", json={"timeout_after_charge": 1.0})).raise_for_status()
    p = await paid(app, sim, card=cards.CARD_DECLINE_G12)
    assert p["status"] == "unknown"
    [row] = await ledger(sim)
    assert row["status"] == "declined"

    summary = await reconcile_now(app)
    assert summary["settled"] == 1
    settled = await detail(app, p["id"])
    assert settled["status"] == "failed" and settled["error_code"] == "G12"


async def test_reauthorization_timeout_is_settled_for_both_payments(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app(gateway_read_timeout=1.0, reconcile_interval_seconds=0)
    old = await paid(app, sim, order_id=None)  # cod is then our payment id
    (await sim.post("/_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    (await sim.post("/_sandbox/faults", json={"timeout_after_charge": 1.0})).raise_for_status()
    r = await app.ops.post(f"/v1/payments/{old['id']}/reauthorize", json=REAUTH)
    assert r.status_code == 504, r.text
    new_id_ = r.json()["payment_id"]
    assert r.json()["payment_status"] == "unknown" and r.json()["reauth_of"] == old["id"]
    # A second re-authorization must wait for the first one's result.
    blocked = await app.ops.post(f"/v1/payments/{old['id']}/reauthorize", json=REAUTH)
    assert blocked.status_code == 409 and blocked.json()["code"] == "reauth_unconfirmed"

    rows = {r["gid"]: r for r in await ledger(sim)}
    [new_gid] = [g for g, r in rows.items() if r["reauth_of"] == old["gid"]]
    summary = await reconcile_now(app)
    assert summary["settled"] == 2, summary
    new = await detail(app, new_id_)
    assert new["status"] == "authorized" and new["gid"] == new_gid and new["total"] == 1796
    assert (await detail(app, old["id"]))["status"] == "canceled"


async def test_two_janitors_never_settle_the_same_payment_twice(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await make_app(reconcile_interval_seconds=0)
    second = await make_app(reconcile_interval_seconds=0)
    gateway = first.app.state.gateway
    due = utcnow() - timedelta(seconds=1)
    pids = []
    for i in range(12):
        cod = f"race{i}"
        gid = await charge_at_gateway(gateway, sim, cod)
        # Half are matched by gid, half by cod + amount + time.
        pids.append(
            await add_payment(sessions, order_id=cod, gid=gid if i % 2 else None, next_check_at=due)
        )

    settled: list[str] = []
    for _ in range(6):
        rounds = await asyncio.gather(
            *[
                reconcile_now(app, scope=scope, limit=3)
                for app in (first, second)
                for scope in ("due", "open")
            ]
        )
        for summary in rounds:
            settled += [c["payment_id"] for c in summary["results"] if c["result"] == "settled"]
        if len(settled) >= len(pids):
            break
    assert sorted(settled) == sorted(pids)  # each exactly once
    async with sessions() as session:
        events = list(
            (
                await session.execute(
                    select(PaymentEvent.payment_id).where(PaymentEvent.actor == "reconciler")
                )
            ).scalars()
        )
    assert sorted(events) == sorted(pids)
    for pid in pids:
        assert (await load(sessions, pid)).status == "authorized"


async def test_schedule_backs_off_then_flags_for_a_person(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await make_app(reconcile_interval_seconds=0)
    gateway = app.app.state.gateway
    t = utcnow()
    # A gid the gateway has no record of: we know a charge was made, so it is never failed.
    pid = await add_payment(sessions, gid=987654321012, next_check_at=t - timedelta(seconds=1))

    # Checks at +1 min (the first, set when it became unknown), +5 min, +1 h, +1 day: then flag.
    assert (await reconcile_due(sessions, gateway, now=t)).rescheduled == 1
    for attempt, delay in enumerate(SCHEDULE[1:-1], start=1):
        p = await load(sessions, pid)
        assert p.check_attempts == attempt and p.next_check_at == t + delay
        assert (await reconcile_due(sessions, gateway, now=t + delay / 2)).checked == 0
        t += delay
        assert (await reconcile_due(sessions, gateway, now=t)).rescheduled == 1
    p = await load(sessions, pid)
    assert p.check_attempts == len(SCHEDULE) - 1 and p.next_check_at == t + SCHEDULE[-1]

    # The app's logging setup owns the root handlers: listen on the janitor's logger itself.
    janitor_log = logging.getLogger("app.reconcile.service")
    janitor_log.addHandler(caplog.handler)
    try:
        summary = await reconcile_due(sessions, gateway, now=t + SCHEDULE[-1])
    finally:
        janitor_log.removeHandler(caplog.handler)
    assert summary.flagged == 1
    p = await load(sessions, pid)
    assert p.needs_attention and p.next_check_at is None and p.status == "unknown"
    assert any(pid in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert (await reconcile_due(sessions, gateway, now=t + timedelta(days=30))).checked == 0

    flagged = (await app.ops.get("/v1/payments", params={"needs_attention": "true"})).json()
    assert [x["id"] for x in flagged["data"]] == [pid]
    r = await app.ops.post(
        f"/v1/payments/{pid}/resolve",
        json={"status": "failed", "reason": "gateway support: no such charge"},
    )
    assert r.status_code == 200 and r.json()["status"] == "failed"
    assert not r.json()["needs_attention"]


async def test_no_record_is_failed_only_long_after_the_request(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(reconcile_interval_seconds=0)
    now = utcnow()
    old = await add_payment(
        sessions, order_id="lost1", created_at=now - timedelta(hours=2), next_check_at=now
    )
    recent = await add_payment(sessions, order_id="lost2", next_check_at=now)
    summary = await reconcile_due(sessions, app.app.state.gateway, now=now + timedelta(seconds=1))
    results = {c.payment_id: c.result for c in summary.results}
    assert results == {old: "settled", recent: "rescheduled"}
    assert (await load(sessions, old)).status == "failed"
    assert (await load(sessions, recent)).status == "unknown"


async def test_stale_pending_is_checked_and_fresh_pending_is_left_alone(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(reconcile_interval_seconds=0)
    await charge_at_gateway(app.app.state.gateway, sim, "stale1")
    now = utcnow()
    stale = await add_payment(
        sessions, status="pending", order_id="stale1", created_at=now - timedelta(minutes=5)
    )
    await add_payment(sessions, status="pending", order_id="fresh1", created_at=now)
    summary = await reconcile_due(sessions, app.app.state.gateway, now=now)
    assert [(c.payment_id, c.result) for c in summary.results] == [(stale, "settled")]
    assert (await load(sessions, stale)).status == "authorized"


async def test_background_loop_settles_without_being_asked(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(reconcile_interval_seconds=0.2)
    gid = await charge_at_gateway(app.app.state.gateway, sim, "loop1")
    pid = await add_payment(sessions, gid=gid, next_check_at=utcnow())
    for _ in range(100):
        if (await load(sessions, pid)).status != "unknown":
            break
        await asyncio.sleep(0.05)
    assert (await load(sessions, pid)).status == "authorized"


async def test_cli_reconcile(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    simulator_url: str,
    db_url: str,
) -> None:
    app = await make_app(reconcile_interval_seconds=0)
    await charge_at_gateway(app.app.state.gateway, sim, "cli1")
    pid = await add_payment(sessions, order_id="cli1", next_check_at=utcnow())
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "GATEWAY_MODE": "sandbox",
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "reconcile",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert f"{pid}: settled unknown -> authorized" in text
    assert "1 checked, 1 settled" in text
    assert (await load(sessions, pid)).status == "authorized"


async def test_a_charged_payment_whose_charge_another_row_holds_is_flagged_not_failed(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The victim's charge is at the gateway, but another payment (same order id and amount)
    took its gid: absence is no proof, so it is flagged for a person instead of failed."""
    app = await make_app(reconcile_interval_seconds=0)
    gid = await charge_at_gateway(app.app.state.gateway, sim, "victim1")
    now = utcnow()
    victim = await add_payment(sessions, order_id="victim1", next_check_at=now)
    holder = await add_payment(sessions, status="authorized", order_id="victim1", gid=gid)
    # Two hours on, "no record" would fail it.
    later = now + timedelta(hours=2)
    summary = await reconcile_due(sessions, app.app.state.gateway, now=later)
    [check] = [c for c in summary.results if c.payment_id == victim]
    p = await load(sessions, victim)
    assert (check.result, p.status, p.needs_attention) == ("flagged", "unknown", True), check
    [flag] = [e for e in (await detail(app, victim))["events"] if e["type"] == "flagged"]
    assert holder in flag["reason"] and str(gid) in flag["reason"]
    assert (await load(sessions, holder)).status == "authorized"


async def test_a_pending_payment_that_never_left_is_failed_when_its_claim_ends(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A pay that claimed its payment and stopped before the "about to send" mark: the janitor
    fails it as soon as the claim (PAY_CLAIM_SECONDS) has ended, not an hour later."""
    app = await make_app(reconcile_interval_seconds=0)
    now = utcnow()
    abandoned = await add_payment(
        sessions,
        status="pending",
        order_id="gone1",
        unsent=True,
        created_at=now - timedelta(seconds=10),
    )
    fresh = await add_payment(sessions, status="pending", order_id="gone2", unsent=True)
    sent = await add_payment(
        sessions, status="pending", order_id="gone3", created_at=now - timedelta(seconds=10)
    )
    summary = await reconcile_due(
        sessions, app.app.state.gateway, now=now, pay_claim=timedelta(seconds=5)
    )
    assert [(c.payment_id, c.result) for c in summary.results] == [(abandoned, "settled")]
    p = await load(sessions, abandoned)
    assert (p.status, p.error_code) == ("failed", "not_sent")
    assert (await load(sessions, fresh)).status == "pending"
    assert (await load(sessions, sent)).status == "pending"  # it may have left: not failed


async def test_orphan_sweep_flags_charges_that_no_payment_holds(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await make_app(reconcile_interval_seconds=0)
    gateway = app.app.state.gateway
    orphan_gid = await charge_at_gateway(gateway, sim, "orphan1")
    held_gid = await charge_at_gateway(gateway, sim, "held1")
    await add_payment(sessions, status="authorized", order_id="held1", gid=held_gid)
    # Open, without gid: the janitor will match this one to its charge; not an orphan.
    await charge_at_gateway(gateway, sim, "claim1")
    claimer = await add_payment(sessions, order_id="claim1")
    settings = orphans.SweepSettings(interval=60, window=timedelta(minutes=5), grace=timedelta(0))
    now = utcnow() + timedelta(seconds=2)

    sweep_log = logging.getLogger("app.reconcile.orphans")
    sweep_log.addHandler(caplog.handler)
    try:
        first = await orphans.sweep(sessions, gateway, settings, now=now)
    finally:
        sweep_log.removeHandler(caplog.handler)
    assert (first.ran, first.windows, first.charges) == (True, 1, 3)
    [pid] = first.orphans
    p = await load(sessions, pid)
    assert (p.kind, p.gid, p.status, p.needs_attention) == (
        "orphan",
        orphan_gid,
        "authorized",
        True,
    )
    assert (p.order_id, p.total) == ("orphan1", 1580)
    [event] = (await detail(app, pid))["events"]
    assert event["type"] == "orphan_found" and event["data"]["gid"] == orphan_gid
    assert any(
        str(orphan_gid) in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR
    )
    assert (await load(sessions, claimer)).gid is None

    # The cursor moved on: the same window is not searched again; later ones, once each.
    assert (await orphans.sweep(sessions, gateway, settings, now=now)).windows == 0
    later = now + timedelta(minutes=5)
    both = await asyncio.gather(
        *[orphans.sweep(sessions, gateway, settings, now=later) for _ in range(2)]
    )
    assert sum(s.windows for s in both) == 1 and [s.orphans for s in both] == [[], []]
    async with sessions() as session:
        cursor = await session.get(SweepCursor, orphans.NAME)
        assert cursor is not None and cursor.position == later and cursor.lease_token is None
        kinds = list((await session.execute(select(Payment.kind))).scalars())
    assert kinds.count("orphan") == 1


async def test_reconciliation_by_hand_runs_the_orphan_sweep(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(
        reconcile_interval_seconds=0,
        orphan_sweep_grace_seconds=0,
        orphan_sweep_window_seconds=120,
    )
    gid = await charge_at_gateway(app.app.state.gateway, sim, "orphan2")
    summary = await reconcile_now(app)
    sweep = summary["orphan_sweep"]
    assert sweep["ran"] and sweep["windows"] == 1 and len(sweep["orphans"]) == 1
    flagged = (await app.ops.get("/v1/payments", params={"needs_attention": "true"})).json()
    assert [(x["kind"], x["gid"]) for x in flagged["data"]] == [("orphan", gid)]
    # Only the by-hand "open" pass sweeps; "due" is the janitor's payments-only pass.
    assert (await reconcile_now(app, scope="due")).get("orphan_sweep") is None
