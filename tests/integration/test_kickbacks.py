"""GET|POST /kickback over real HTTP: stored raw first, always 200 with a body, applied once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.gateway.base import TokenCharge
from app.kickbacks import service as kickbacks
from app.kickbacks.models import Kickback
from app.payments.models import Payment
from app.payments.service import cod_for
from app.sandbox import cards
from app.sandbox.testing import make_token
from app.tracing import make_provider
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.support.fixtures import KICKBACK_PATH, KICKBACK_SECRET, AppFactory

pytestmark = pytest.mark.integration

SEED_SAMPLE = (
    "gid=10000001&rst=1&ap=0001112&ec=&god=10000002&cod=test &am=1000&tx=80&sf=500&ta=1580"
)


async def pending_payment(
    sessions: async_sessionmaker[AsyncSession], order_id: str, status: str = "pending", **kw: Any
) -> str:
    async with sessions() as session:
        pid = new_id("pay")
        p = Payment(
            id=pid,
            kind="checkout",
            status=status,
            job=kw.pop("job", "AUTH"),
            order_id=order_id,
            cod=cod_for(order_id, pid),
            amount=1000,
            tax=80,
            shipping=500,
            result_mode=0,
            check_attempts=0,
            needs_attention=False,
            **kw,
        )
        session.add(p)
        await session.commit()
        return p.id


async def settled(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Kickbacks are applied just after the 200 is sent: wait until none is left unapplied."""
    for _ in range(200):
        async with sessions() as session:
            waiting = await session.scalar(
                select(func.count()).where(Kickback.status == "received")
            )
        if not waiting:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("kickbacks were stored but never applied")


async def payment(sessions: async_sessionmaker[AsyncSession], pid: str) -> Payment:
    await settled(sessions)
    async with sessions() as session:
        p = await session.get(Payment, pid)
        assert p is not None
        return p


async def inbox(sessions: async_sessionmaker[AsyncSession]) -> list[Kickback]:
    await settled(sessions)
    async with sessions() as session:
        return list((await session.execute(select(Kickback).order_by(Kickback.id))).scalars())


async def test_seed_sample_with_trailing_space_in_cod(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    pid = await pending_payment(sessions, "test")
    r = await app.client.get(f"{KICKBACK_PATH}?{SEED_SAMPLE}")
    assert r.status_code == 200 and r.text and r.headers["content-type"].startswith("text/plain")
    p = await payment(sessions, pid)
    assert p.status == "authorized" and p.gid == 10000001 and p.ap == "0001112"
    [kb] = await inbox(sessions)
    assert kb.status == "applied" and kb.payment_id == pid
    # httpx sends the space as %20; the inbox keeps exactly the bytes that arrived.
    assert kb.raw_query == SEED_SAMPLE.replace(" ", "%20").encode()
    assert kb.source_ip == "127.0.0.1"


async def test_cp932_cod_is_decoded_from_raw_bytes(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    pid = await pending_payment(sessions, "注文テスト1")
    cod = quote_from_bytes("注文テスト1".encode("cp932"))
    query = f"gid=777&rst=1&ap=A1&ec=&god=9&cod={cod}&am=1000&tx=80&sf=500&ta=1580"
    r = await app.client.get(f"{KICKBACK_PATH}?{query}")
    assert r.status_code == 200 and r.text
    p = await payment(sessions, pid)
    assert p.status == "authorized" and p.gid == 777


async def test_duplicates_and_reordering(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    pid = await pending_payment(sessions, "dup1", job="CAPTURE")
    query = "gid=501&rst=1&ap=X&ec=&god=1&cod=dup1&am=1000&tx=80&sf=500&ta=1580"
    answers = await asyncio.gather(*[app.client.get(f"{KICKBACK_PATH}?{query}") for _ in range(3)])
    assert all(a.status_code == 200 and a.text for a in answers)
    p = await payment(sessions, pid)
    assert p.status == "captured"
    statuses = sorted(k.status for k in await inbox(sessions))
    assert statuses.count("applied") >= 1 and len(statuses) == 3
    # A late failure notice for the same gid must not move a captured payment backwards.
    late = "gid=501&rst=2&ap=&ec=G12&god=1&cod=dup1&am=1000&tx=80&sf=500&ta=1580"
    assert (await app.client.get(f"{KICKBACK_PATH}?{late}")).status_code == 200
    assert (await payment(sessions, pid)).status == "captured"


@pytest.mark.parametrize(
    "raw",
    [
        b"gid=99999&rst=1&cod=nobody&am=1&tx=0&sf=0&ta=1",
        b"\xff\xfe\x00garbage%%%&&==",
        b"",
        b"gid=abc&rst=zz",
    ],
)
async def test_garbage_and_unknown_always_get_200(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession], raw: bytes
) -> None:
    app = await make_app()
    # Bytes outside ASCII cannot travel raw in a request line; they arrive percent-encoded,
    # while broken escapes like '%%%' go through as they are.
    query = quote_from_bytes(raw, safe="=&%").encode()
    # The fixture clients' timeout: httpx's default 5 s is shorter than a first request can
    # take on two cores busy with the browser tier (CI once took 6.6 s here).
    async with httpx.AsyncClient(timeout=30) as c:
        r = await c.send(httpx.Request("GET", httpx.URL(app.url + "/kickback", query=query)))
    assert r.status_code == 200 and r.text == "OK"
    rows = await inbox(sessions)
    assert rows[-1].raw_query == query
    assert rows[-1].status in ("unmatched", "invalid")


async def test_form_post_kickback(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    pid = await pending_payment(sessions, "post1")
    r = await app.client.post(
        KICKBACK_PATH,
        content="gid=601&rst=1&ap=Z&ec=&god=2&cod=post1&am=1000&tx=80&sf=500&ta=1580",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200 and r.text
    assert (await payment(sessions, pid)).status == "authorized"


async def test_rt0_checkout_settles_by_kickback(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(gateway_result_mode=0)
    (
        await sim.post("/_sandbox/config", json={"kickback_url": f"{app.url}{KICKBACK_PATH}"})
    ).raise_for_status()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 202 and r.json()["status"] == "pending"
    pid = r.json()["id"]
    for _ in range(100):
        if (await payment(sessions, pid)).status != "pending":
            break
        await asyncio.sleep(0.05)
    p = await payment(sessions, pid)
    assert p.status == "authorized" and p.gid
    status = (await app.client.get(f"/checkout/{cs['id']}/status")).json()
    assert status["status"] == "succeeded"


async def test_untrusted_source_is_verified_with_search_api(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(kickback_allowed_ips="")
    # A forged notice for a payment the gateway never made is kept but flagged.
    pid = await pending_payment(sessions, "forged1")
    forged = "gid=424242&rst=1&ap=F&ec=&god=3&cod=forged1&am=1000&tx=80&sf=500&ta=1580"
    assert (await app.client.get(f"/kickback?{forged}")).status_code == 200
    assert (await payment(sessions, pid)).status == "pending"
    assert (await inbox(sessions))[-1].status == "flagged"


async def test_untrusted_kickback_for_a_real_charge_is_applied_once_search_confirms_it(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(kickback_allowed_ips="")
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    real = await app.app.state.gateway.charge_token(
        TokenCharge(
            job="AUTH",
            token=token,
            amount=1000,
            tax=80,
            shipping=500,
            order_id="real1",
            email=str(SESSION["email"]),
        )
    )
    assert real.charge_id
    # A notice that lies about the result is refused, even though the gid is real.
    liar = await pending_payment(sessions, "real1")
    lie = f"gid={real.charge_id}&rst=2&ap=&ec=G12&god=1&cod=real1&am=1000&tx=80&sf=500&ta=1580"
    assert (await app.client.get(f"/kickback?{lie}")).status_code == 200
    assert (await payment(sessions, liar)).status == "pending"
    assert (await inbox(sessions))[-1].status == "flagged"

    truth = f"gid={real.charge_id}&rst=1&ap=X1&ec=&god=2&cod=real1&am=1000&tx=80&sf=500&ta=1580"
    assert (await app.client.get(f"/kickback?{truth}")).status_code == 200
    p = await payment(sessions, liar)
    assert p.status == "authorized" and p.gid == real.charge_id
    assert (await inbox(sessions))[-1].status == "applied"


async def test_every_charge_names_its_payment_and_the_kickback_echoes_it(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(gateway_result_mode=0)
    url = f"{app.url}{KICKBACK_PATH}"
    (await sim.post("/_sandbox/config", json={"kickback_url": url})).raise_for_status()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 202, r.text
    pid = r.json()["id"]
    for _ in range(100):
        if (await payment(sessions, pid)).status != "pending":
            break
        await asyncio.sleep(0.05)
    detail = (await app.ops.get(f"/v1/payments/{pid}")).json()
    [call] = detail["gateway_calls"]
    assert call["request"]["payment_ref"] == pid
    [kb] = await inbox(sessions)
    assert f"payment_ref={pid}".encode() in kb.raw_query
    assert kb.trusted and kb.status == "applied" and kb.payment_id == pid
    assert detail["status"] == "authorized"


async def test_the_secret_path_is_trusted_and_the_secret_is_kept_nowhere(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    exporter = InMemorySpanExporter()
    provider = make_provider({}, processor=SimpleSpanProcessor(exporter))
    app = await make_app(tracer_provider=provider)
    pid = await pending_payment(sessions, "secret1")
    query = "gid=901&rst=1&ap=A&ec=&god=9&cod=secret1&am=1000&tx=80&sf=500&ta=1580"
    wrong = await app.client.get(f"/kickback/{KICKBACK_SECRET[:-1]}x?{query}")
    assert (wrong.status_code, wrong.text) == (200, "OK")
    await inbox(sessions)  # processed before the next one (else that one is its duplicate)
    right = await app.client.get(f"{KICKBACK_PATH}?{query}")
    assert (right.status_code, right.text) == (200, "OK")
    first, second = await inbox(sessions)
    # The wrong secret is a stranger: verified by the search (no such gid there).
    assert not first.trusted and first.status == "flagged"
    assert second.trusted and second.status == "applied"
    assert (await payment(sessions, pid)).status == "authorized"
    metrics = (await app.client.get("/metrics")).text
    assert 'route="/kickback/{secret}"' in metrics
    async with sessions() as session:
        rows = (await session.execute(text("SELECT * FROM kickbacks"))).all()
    spans = str([s.to_json() for s in exporter.get_finished_spans()])
    assert "/kickback/***" in spans
    for where in (metrics, str(rows), spans):
        assert KICKBACK_SECRET not in where and KICKBACK_SECRET[:-1] not in where


async def test_a_failure_the_search_cannot_confirm_yet_waits_and_is_applied_later(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A trusted decline of a payment whose answer was lost: while the charges search cannot
    answer (maintenance), the payment is not failed; the kickback is kept and tried again."""
    app = await make_app(gateway_result_mode=0)
    cs = await new_session(app, order_id="later1")
    token = await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=three_ds_of(SESSION))
    (await sim.post("/_sandbox/faults", json={"garbage_after_charge": 1.0})).raise_for_status()
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    (await sim.post("/_sandbox/faults", json={})).raise_for_status()
    assert r.json()["status"] == "unknown", r.text
    pid = r.json()["id"]
    [row] = [x for x in (await sim.get("/_sandbox/ledger")).json() if x["cod"] == "later1"]
    query = (
        f"gid={row['gid']}&rst=2&ap=&ec=G12&god={row['god']}&cod=later1"
        f"&am=1000&tx=80&sf=500&ta=1580&payment_ref={pid}"
    )
    (await sim.post("/_sandbox/maintenance", json={"on": True})).raise_for_status()
    try:
        assert (await app.client.get(f"{KICKBACK_PATH}?{query}")).status_code == 200
        for _ in range(100):
            [kb] = await inbox(sessions)
            if kb.status != "received":
                break
            await asyncio.sleep(0.05)
        assert kb.status == "deferred" and kb.attempts == 1 and kb.next_attempt_at is not None
        assert (await payment(sessions, pid)).status == "unknown"
    finally:
        (await sim.post("/_sandbox/maintenance", json={"on": False})).raise_for_status()
    async with sessions() as session:
        await session.execute(text("UPDATE kickbacks SET next_attempt_at = now()"))
        await session.commit()
    state = app.app.state
    await kickbacks.retry_stuck(sessions, state.gateway, verifier=state.kickback_verifier)
    [kb] = await inbox(sessions)
    p = await payment(sessions, pid)
    assert kb.status == "applied" and p.status == "failed" and p.error_code == "G12"
    assert p.gid == row["gid"]


async def test_retention_deletes_old_processed_kickbacks_in_batches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    cases = [
        # (status, trusted, age in days, kept?)
        ("applied", True, 200, False),
        ("applied", True, 100, True),
        ("flagged", True, 100, True),
        ("flagged", False, 10, False),  # untrusted and flagged: junk
        ("unmatched", False, 10, False),
        ("unmatched", True, 10, True),
        ("invalid", True, 10, False),
        ("invalid", False, 1, True),
        ("deferred", False, 400, True),  # never deleted before it is processed
        ("received", True, 400, True),
    ]
    ids = []
    for status, trusted, age, _ in cases:
        raw = kickbacks.RawKickback("GET", "127.0.0.1", b"gid=1", b"", None, now, trusted=trusted)
        kid = await kickbacks.store(sessions, raw)
        async with sessions() as session:
            kb = await session.get(Kickback, kid)
            assert kb is not None
            kb.status, kb.received_at = status, now - timedelta(days=age)
            await session.commit()
        ids.append(kid)
    deleted = await kickbacks.purge(sessions, kickbacks.Retention(180, 7), batch=2)
    kept = {k.id for k in await inbox_all(sessions)}
    assert deleted == 4
    assert [kid in kept for kid in ids] == [c[3] for c in cases]


async def inbox_all(sessions: async_sessionmaker[AsyncSession]) -> list[Kickback]:
    async with sessions() as session:
        return list((await session.execute(select(Kickback))).scalars())
