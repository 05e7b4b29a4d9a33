"""Crashes: an app process killed with SIGKILL (`kill -9`) at the worst moments, and PostgreSQL
restarted while a gateway answer comes back. Two app processes share one PostgreSQL and the
standalone simulator; money is counted in the simulator's ledger.

- after the gateway charged a one-touch payment, before we recorded it: a retry of the same
  Idempotency-Key on the other replica answers from the payment, never charging again;
- PostgreSQL down for about 3 s while the answer comes: the retry charges nothing more;
- a burst of checkout-session creations killed halfway: every key has one session;
- captures, cancels and re-authorizations killed mid-call: reconciliation settles each one to
  the ledger and every charge in the ledger belongs to a payment of ours;
- killed between claiming a checkout session and calling the gateway (a crash point): the
  session can be paid on the other replica as soon as the claim has expired;
- killed after a kickback settled an rt=0 pay with registration (key and card number
  committed) and before the card was read back: the other replica reads it back, the card
  pays in one touch, and the charge is never repeated;
- SBPS: killed right after ST01-00118-101 (3-D Secure's authorization) answered, before it was
  recorded: the shopper's return replayed on the other replica sends nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers.models import Card
from app.hosted.models import CheckoutSession
from app.idempotency import IdempotencyKey
from app.kickbacks.models import Kickback
from app.payments.models import Payment
from app.reconcile.service import NO_SEARCH
from app.sandbox import cards
from app.sandbox.sbps.testing import make_tds_info_token
from app.sandbox.sbps.testing import make_token as make_sbps_token
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.integration.test_customers import ZERO_3DS
from tests.reliability.support_chaos import AppProcess, app_processes
from tests.reliability.test_db_outage import OwnDatabase, own_db  # noqa: F401 (a fixture)
from tests.support import sbps
from tests.support.fixtures import KICKBACK_PATH, AppFactory

pytestmark = pytest.mark.reliability

# Claim times short enough for a test: an Idempotency-Key, and a pay's claim on its session.
CLAIM = 2.0
FIGURES: list[str] = []


def _env(simulator_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "GATEWAY_READ_TIMEOUT": "15",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "IDEMPOTENCY_CLAIM_SECONDS": str(CLAIM),
        "PAY_CLAIM_SECONDS": str(CLAIM),
        "VELOCITY_MAX_FAILURES_PER_IP": "0",
        "VELOCITY_MAX_FAILURES_PER_CUSTOMER": "0",
        "SPOOL_DIR": str(tmp_path / "spool"),
        **extra,
    }


@contextlib.asynccontextmanager
async def _replicas(
    db_url: str, simulator_url: str, tmp_path: Path, *envs: dict[str, str]
) -> AsyncIterator[list[AppProcess]]:
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    full = [_env(simulator_url, tmp_path, **e) for e in envs]
    async with app_processes(full, db_url=db_url, log_dir=log_dir, name="crash-app") as apps:
        yield apps


def _report(capsys: pytest.CaptureFixture[str], line: str) -> None:
    with capsys.disabled():
        print(f"\ncrash recovery: {line}")


async def _ledger(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sim.get("/_sandbox/ledger")).json()
    return rows


async def _until(check: Callable[[], Awaitable[bool]], what: str, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def _customer_with_card(app: AppProcess, sim: httpx.AsyncClient, uid: str, card: str) -> None:
    r = await app.merchant.post("/v1/customers", json={"uid": uid, "email": "taro@example.com"})
    assert r.status_code == 201, r.text
    token = await make_token(sim, card=card, three_ds=ZERO_3DS)
    r = await app.merchant.post(f"/v1/customers/{uid}/cards", json={"token": token})
    assert r.status_code == 201, r.text


async def _swallow(request: Awaitable[httpx.Response]) -> httpx.Response | None:
    """A request to a process that gets killed: its connection just drops."""
    try:
        return await request
    except httpx.HTTPError:
        return None


# --- finding 2: one effect per Idempotency-Key --------------------------------------------------


async def test_kill_after_the_onetouch_charge_then_retry_on_the_other_replica(
    db_url: str,
    sim: httpx.AsyncClient,
    simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The stored card charges, then its answer hangs: the process is killed in between.
    (await sim.post("/_sandbox/config", json={"hang_seconds": 20})).raise_for_status()
    async with _replicas(db_url, simulator_url, tmp_path, {}, {}) as (a, b):
        await _customer_with_card(a, sim, "crash01", cards.CARD_TIMEOUT)
        body = {
            "customer_id": "crash01",
            "card_num": 1,
            "amount": 12_000,
            "tax": 1_200,
            "job": "CAPTURE",
            "order_id": "crashot1",
        }
        headers = {"Idempotency-Key": "crashot1"}
        first = asyncio.create_task(
            _swallow(a.merchant.post("/v1/payments", json=body, headers=headers))
        )

        async def charged() -> bool:
            return any(r["cod"] == "crashot1" for r in await _ledger(sim))

        await _until(charged, "the gateway's charge")
        a.kill()
        assert await first is None
        await asyncio.sleep(CLAIM + 0.5)
        retry = await b.merchant.post("/v1/payments", json=body, headers=headers)
        rows = [r for r in await _ledger(sim) if r["cod"] == "crashot1"]
        async with sessions() as session:
            ours = list(
                (
                    await session.execute(select(Payment).where(Payment.order_id == "crashot1"))
                ).scalars()
            )
    FIGURES.append(f"one-touch killed after the charge: {len(rows)} x 13,200 yen charged")
    _report(capsys, FIGURES[-1] + f"; retry answered {retry.status_code}")
    assert len(rows) == 1, rows
    assert retry.status_code == 201, retry.text
    assert retry.json()["status"] == "captured" and retry.json()["gid"] == rows[0]["gid"]
    assert [p.id for p in ours] == [retry.json()["id"]]


async def test_database_restart_while_the_answer_comes_charges_once(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    own_db: OwnDatabase,  # noqa: F811 (the fixture imported above)
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await make_app(
        database_url=own_db.url, reconcile_interval_seconds=0, idempotency_claim_seconds=CLAIM
    )
    r = await app.merchant.post("/v1/customers", json={"uid": "crash02", "email": "t@example.com"})
    assert r.status_code == 201, r.text
    token = await make_token(sim, card=cards.CARD_SLOW, three_ds=ZERO_3DS)
    r = await app.merchant.post("/v1/customers/crash02/cards", json={"token": token})
    assert r.status_code == 201, r.text
    # The slow card answers 2 s after the call: PostgreSQL is down by then, for about 3 s.
    (await sim.post("/_sandbox/config", json={"slow_seconds": 2.0})).raise_for_status()
    body = {"customer_id": "crash02", "card_num": 1, "amount": 7_000, "order_id": "crashdb1"}
    headers = {"Idempotency-Key": "crashdb1"}
    first = asyncio.create_task(app.merchant.post("/v1/payments", json=body, headers=headers))

    async def created() -> bool:
        async with own_db.sessions() as session:
            return bool(
                await session.scalar(select(func.count()).where(Payment.order_id == "crashdb1"))
            )

    await _until(created, "the pending payment")
    await asyncio.sleep(0.2)
    await asyncio.to_thread(own_db.server.stop, "fast")
    await asyncio.sleep(3.0)
    await asyncio.to_thread(own_db.server.start)
    answer = await first
    assert answer.status_code >= 500, answer.text
    # The merchant retries until the key is no longer in progress.
    deadline = time.monotonic() + 20
    while True:
        retry = await app.merchant.post("/v1/payments", json=body, headers=headers)
        if retry.status_code != 409 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    rows = [r for r in await _ledger(sim) if r["cod"] == "crashdb1"]
    FIGURES.append(f"PostgreSQL restarted during the answer: {len(rows)} x 7,000 yen charged")
    _report(capsys, FIGURES[-1] + f"; first {answer.status_code}, retry {retry.status_code}")
    assert len(rows) == 1, rows
    assert retry.status_code == 201, retry.text
    assert retry.json()["gid"] == rows[0]["gid"] and retry.json()["status"] == "captured"


async def test_session_keys_in_flight_at_a_kill_create_one_session_each(
    db_url: str,
    sim: httpx.AsyncClient,
    simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    n = 300
    # A dies after a hundred sessions are made, with the 100th key's answer not stored yet
    # (and whichever other requests are mid-way at that moment).
    crash = {"SANDBOX_CRASH_POINTS": "idempotency.before_answer@100", "DB_POOL_SIZE": "40"}
    async with _replicas(db_url, simulator_url, tmp_path, crash, {}) as (a, b):

        def create(app: AppProcess, i: int) -> Awaitable[httpx.Response]:
            return app.merchant.post(
                "/v1/checkout/sessions",
                json={**SESSION, "order_id": f"burst{i}"},
                headers={"Idempotency-Key": f"burst{i}"},
            )

        burst = await asyncio.gather(*[_swallow(create(a, i)) for i in range(n)])
        assert a.proc is not None and a.proc.wait(10) == -9
        assert sum(r is None for r in burst) > 0
        async with sessions() as session:
            in_flight = await session.scalar(
                select(func.count()).where(IdempotencyKey.status == "in_flight")
            )
            made = await session.scalar(select(func.count()).select_from(CheckoutSession))
        await asyncio.sleep(CLAIM + 0.5)
        limit = asyncio.Semaphore(16)  # within B's connection pool

        async def again(i: int) -> httpx.Response:
            async with limit:
                return await create(b, i)

        retries = await asyncio.gather(*[again(i) for i in range(n)])
        async with sessions() as session:
            per_order = Counter((await session.execute(select(CheckoutSession.order_id))).scalars())
    second = sum(c - 1 for c in per_order.values() if c > 1)
    FIGURES.append(
        f"{n} session keys, {in_flight} in flight at the kill ({made} sessions made): "
        f"{second} second sessions"
    )
    _report(capsys, FIGURES[-1])
    assert in_flight, "the kill left no key in flight: the test did not test anything"
    assert Counter(r.status_code for r in retries) == Counter({201: n})
    assert second == 0, [o for o, c in per_order.items() if c > 1]
    assert sorted(str(o) for o in per_order) == sorted(f"burst{i}" for i in range(n))
    for i, r in enumerate(retries):
        assert r.json()["order_id"] == f"burst{i}"


# --- finding 8: operations killed mid-call ------------------------------------------------------


async def _paid(app: AppProcess, sim: httpx.AsyncClient, order_id: str, job: str) -> str:
    body = {**SESSION, "order_id": order_id, "job": job}
    cs = (await app.merchant.post("/v1/checkout/sessions", json=body)).json()
    token = await make_token(sim, three_ds=three_ds_of(body))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    pid: str = r.json()["id"]
    return pid


async def test_operations_killed_mid_call_are_settled_from_the_ledger(
    db_url: str,
    sim: httpx.AsyncClient,
    simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    n_capture, n_cancel, n_reauth = 20, 20, 5
    async with _replicas(db_url, simulator_url, tmp_path, {}, {}) as (a, b):
        to_capture = [await _paid(b, sim, f"cap{i}", "AUTH") for i in range(n_capture)]
        to_cancel = [await _paid(b, sim, f"can{i}", "CAPTURE") for i in range(n_cancel)]
        to_reauth = [await _paid(b, sim, f"rea{i}", "AUTH") for i in range(n_reauth)]
        gid_of = {}
        async with sessions() as session:
            for p in (await session.execute(select(Payment))).scalars():
                gid_of[p.id] = p.gid
        # Every money call now acts at the gateway, then its answer hangs: A is killed then.
        (await sim.post("/_sandbox/config", json={"hang_seconds": 30})).raise_for_status()
        faults = {"timeout_after_charge": 1.0}
        (await sim.post("/_sandbox/faults", json=faults)).raise_for_status()
        calls = [
            *(a.ops.post(f"/v1/payments/{pid}/capture") for pid in to_capture),
            *(a.ops.post(f"/v1/payments/{pid}/cancel") for pid in to_cancel),
            *(
                a.ops.post(f"/v1/payments/{pid}/reauthorize", json={"amount": 1200})
                for pid in to_reauth
            ),
        ]
        tasks = [asyncio.create_task(_swallow(c)) for c in calls]

        async def all_done_at_the_gateway() -> bool:
            rows = {r["gid"]: r for r in await _ledger(sim)}
            return (
                all(rows[gid_of[p]]["status"] == "captured" for p in to_capture)
                and all(rows[gid_of[p]]["status"] == "canceled" for p in to_cancel)
                and all(rows[gid_of[p]]["status"] == "canceled" for p in to_reauth)
            )

        await _until(all_done_at_the_gateway, "every operation at the gateway", within=30)
        a.kill()
        assert await asyncio.gather(*tasks) == [None] * len(tasks)
        (await sim.post("/_sandbox/faults", json={})).raise_for_status()
        summary = (await b.ops.post("/v1/reconciliations", json={})).json()
        ledger = {r["gid"]: r for r in await _ledger(sim)}
        async with sessions() as session:
            ours = {p.id: p for p in (await session.execute(select(Payment))).scalars()}
    stale_capture = sum(ours[p].status != "captured" for p in to_capture)
    stale_cancel = sum(ours[p].status != "canceled" for p in to_cancel)
    held = {p.gid for p in ours.values()}
    orphans = [g for g in ledger if g not in held]
    FIGURES.append(
        f"killed mid-call: {stale_capture} of {n_capture} captured at the gateway not captured "
        f"here, {stale_cancel} of {n_cancel} canceled not canceled here, {len(orphans)} "
        f"re-authorization charges with no payment; reconciliation checked {summary['checked']}"
    )
    _report(capsys, FIGURES[-1])
    assert stale_capture == stale_cancel == 0
    assert orphans == []
    status = {"authorized": "authorized", "captured": "captured", "canceled": "canceled"}
    for p in ours.values():
        assert p.gid is not None and p.status == status[ledger[p.gid]["status"]], p.id
    reauths = [p for p in ours.values() if p.kind == "reauth"]
    assert sorted(str(p.reauth_of_id) for p in reauths) == sorted(to_reauth)
    assert all(ours[p].status == "canceled" for p in to_reauth)


# --- finding 13: killed between the claim and the gateway call ---------------------------------


async def test_kill_before_the_call_leaves_the_session_payable_on_the_other_replica(
    db_url: str,
    sim: httpx.AsyncClient,
    simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    armed = {"SANDBOX_CRASH_POINTS": "checkout.before_send,onetouch.before_send"}
    async with _replicas(db_url, simulator_url, tmp_path, armed, {}, armed) as (a, b, c):
        body = {**SESSION, "order_id": "crashpay1"}
        cs = (await b.merchant.post("/v1/checkout/sessions", json=body)).json()
        token = await make_token(sim, three_ds=three_ds_of(body))
        lost = await _swallow(
            a.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
        )
        assert lost is None and a.proc is not None and a.proc.wait(10) == -9
        await asyncio.sleep(CLAIM + 0.5)
        token = await make_token(sim, three_ds=three_ds_of(body))
        again = await b.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
        checkout_rows = [r for r in await _ledger(sim) if r["cod"] == "crashpay1"]

        # The same for a one-touch charge: a retry of its key charges, once.
        await _customer_with_card(b, sim, "crash03", cards.CARD_OK)
        charge = {"customer_id": "crash03", "card_num": 1, "amount": 5000, "order_id": "crashot2"}
        headers = {"Idempotency-Key": "crashot2"}
        assert await _swallow(c.merchant.post("/v1/payments", json=charge, headers=headers)) is None
        await asyncio.sleep(CLAIM + 0.5)
        retry = await b.merchant.post("/v1/payments", json=charge, headers=headers)
        onetouch_rows = [r for r in await _ledger(sim) if r["cod"] == "crashot2"]
        async with sessions() as session:
            left = dict(
                (
                    await session.execute(
                        select(Payment.id, Payment.status).where(
                            Payment.order_id.in_(("crashpay1", "crashot2"))
                        )
                    )
                ).all()
            )
    FIGURES.append(
        f"killed before the call: the next pay answered {again.status_code} "
        f"({len(checkout_rows)} charge); one-touch retry {retry.status_code} "
        f"({len(onetouch_rows)} charge), payments left {sorted(Counter(left.values()).items())}"
    )
    _report(capsys, FIGURES[-1])
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "authorized" and len(checkout_rows) == 1
    assert retry.status_code == 201, retry.text
    assert len(onetouch_rows) == 1 and retry.json()["gid"] == onetouch_rows[0]["gid"]
    # The payments that never left are failed at once, not left pending for an hour.
    assert sorted(left.values()) == ["authorized", "captured", "failed", "failed"], left


# --- the card an rt=0 kickback registered: killed before it was read back -----------------------


async def test_kill_between_the_registration_kickback_and_the_card_read_back(
    db_url: str,
    sim: httpx.AsyncClient,
    simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rt0 = {"GATEWAY_RESULT_MODE": "0", "CARD_READ_BACK_AFTER_SECONDS": "1"}
    armed = {**rt0, "SANDBOX_CRASH_POINTS": "kickback.before_card_read"}
    async with _replicas(db_url, simulator_url, tmp_path, armed, rt0) as (a, b):
        # The gateway's kickbacks reach A, which dies after committing the registration.
        config = {"kickback_url": f"{a.url}{KICKBACK_PATH}"}
        (await sim.post("/_sandbox/config", json=config)).raise_for_status()
        uid = "crashcard01"
        body = {**SESSION, "order_id": "crashcard1", "customer_id": uid, "save_card": True}
        cs = (await b.merchant.post("/v1/checkout/sessions", json=body)).json()
        token = await make_token(sim, three_ds=three_ds_of(body))
        r = await b.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
        assert r.status_code == 202 and r.json()["status"] == "pending", r.text
        pid = r.json()["id"]
        assert a.proc is not None

        async def a_died() -> bool:
            return a.proc is not None and a.proc.poll() is not None

        await _until(a_died, "A killed at kickback.before_card_read")
        async with sessions() as session:
            kept = await session.scalar(select(Card).where(Card.customer_uid == uid))
            settled = await session.get(Payment, pid)
        assert kept is not None and kept.masked_number is None, "killed before the read-back"
        assert settled is not None and settled.status == "authorized"

        async def read_back() -> bool:
            async with sessions() as session:
                card = await session.scalar(select(Card).where(Card.customer_uid == uid))
            return card is not None and card.masked_number is not None

        started = time.monotonic()
        await _until(read_back, "B reads the card back", within=30)
        took = time.monotonic() - started
        async with sessions() as session:
            card = await session.scalar(select(Card).where(Card.customer_uid == uid))
            inbox = list((await session.execute(select(Kickback.status))).scalars())
        charge = {"customer_id": uid, "card_num": card.num if card else 0, "amount": 700}
        again = await b.merchant.post(
            "/v1/payments", json=charge, headers={"Idempotency-Key": "crashcard2"}
        )
        rows = [row for row in await _ledger(sim) if row["cod"] == "crashcard1"]
        # rt=0: accepted for later; the gateway charged the saved card.
        touched = [row for row in await _ledger(sim) if row["cod"] == again.json().get("cod")]
    FIGURES.append(
        f"killed before the card read-back: A exit {a.proc.returncode}; "
        f"card {card.num if card else '-'} read back by B after {took:.1f} s as "
        f"{card.masked_number if card else '-'}; "
        f"{len(rows)} charge for the order; one-touch on it {again.status_code}"
    )
    _report(capsys, FIGURES[-1])
    assert a.proc.returncode == -9
    assert card is not None and card.masked_number == "*" * 12 + cards.CARD_OK[-4:]
    assert card.expiry and card.status == "active"
    assert inbox == ["applied"] and len(rows) == 1
    assert again.status_code == 202 and again.json()["status"] == "pending", again.text
    assert [(row["status"], row["num"]) for row in touched] == [("captured", card.num)]


# --- SBPS 3-D Secure: killed after ST01-00118-101 answered, before it was recorded ----------


async def test_kill_after_the_3ds_authorization_never_charges_twice(
    db_url: str,
    simulator_url: str,
    sbps_simulator_url: str,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A is killed (SIGKILL) right after its one ST01-00118-101 answered. The shopper's return,
    replayed on B, finds the step claimed and sends nothing: one charge in the ledger, the
    payment left pending (never failed: it may be charged), flagged for a person by the first
    reconciliation, and resolved by hand with the charge's tracking id."""
    sbps_env = {
        "GATEWAY_PROVIDER": "sbps",
        "SBPS_API_URL": f"{sbps_simulator_url}/api/xmlapi.do",
        "SBPS_MERCHANT_ID": sbps.MERCHANT_ID,
        "SBPS_SERVICE_ID": sbps.SERVICE_ID,
        "SBPS_HASH_KEY": sbps.HASH_KEY,
    }
    armed = {**sbps_env, "SANDBOX_CRASH_POINTS": "checkout.after_3ds_authorize"}
    async with _replicas(db_url, simulator_url, tmp_path, armed, sbps_env) as (a, b):
        body = {**SESSION, "order_id": "crash3ds1"}
        cs = (await b.merchant.post("/v1/checkout/sessions", json=body)).json()
        pair = await make_sbps_token(sbps_sim)
        info = await make_tds_info_token(sbps_sim)
        paid = await a.client.post(
            f"/v1/checkout/sessions/{cs['id']}/pay",
            json={
                "token": pair.token,
                "token_key": pair.token_key,
                "tds_info_token": info.token,
                "tds_info_token_key": info.token_key,
            },
        )
        assert paid.status_code == 202, paid.text
        issuer = await sbps_sim.get(paid.json()["three_ds_url"])
        back = urlsplit(issuer.headers["location"])
        path = f"{back.path}?{back.query}"
        assert await _swallow(a.client.get(path)) is None
        assert a.proc is not None and a.proc.wait(10) == -9
        replayed = await b.client.get(path)
        status = (await b.client.get(f"/checkout/{cs['id']}/status")).json()["status"]
        rows = [
            r
            for r in (await sbps_sim.get("_sandbox/ledger")).json()
            if r["order_id"] == "crash3ds1"
        ]
        async with sessions() as session:
            p = await session.get(Payment, paid.json()["id"])
        # SBPS looks a charge up only by its tracking id, which the lost answer carried:
        # reconciliation sends it to a person at once (asking again can never find it)...
        summary = (await b.ops.post("/v1/reconciliations", json={})).json()
        async with sessions() as session:
            flagged = await session.get(Payment, paid.json()["id"])
        # ...who finds the order in SBPS's console (here: the simulator's ledger) and resolves.
        resolved = await b.ops.post(
            f"/v1/payments/{paid.json()['id']}/resolve",
            json={
                "status": "authorized",
                "reason": "found in SBPS's console by order id",
                "gid": int(rows[0]["tracking_id"]),
            },
            headers={"Idempotency-Key": "crash3ds1-resolve"},
        )
        async with sessions() as session:
            settled = await session.get(Payment, paid.json()["id"])
    FIGURES.append(
        f"killed after ST01-00118: the replayed return answered {replayed.status_code}, "
        f"{len(rows)} charge, payment {p.status if p else None}/{p.tds_state if p else None}, "
        f"flagged by reconciliation: {bool(flagged and flagged.needs_attention)}, "
        f"resolved by hand: {settled.status if settled else None}"
    )
    _report(capsys, FIGURES[-1])
    assert replayed.status_code == 303
    assert [r["approved"] for r in rows] == [True]
    assert p is not None and p.status == "pending" and p.tds_state == "authorizing"
    assert status == "pending"
    assert [(c["result"], c["note"]) for c in summary["results"]] == [("flagged", NO_SEARCH)]
    assert flagged is not None and flagged.status == "pending" and flagged.needs_attention
    assert resolved.status_code == 200, resolved.text
    assert settled is not None and settled.status == "authorized"
    assert settled.gid == int(rows[0]["tracking_id"])
