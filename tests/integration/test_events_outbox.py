"""The outbox (issue 18, first part): an event row exists if and only if its change committed,
and carries the state that committed; payments and checkout sessions tell the shop of their
changes through it (real PostgreSQL, the simulator process over HTTP)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.service import expire_sessions
from app.db import new_id, utcnow
from app.events import outbox
from app.events.models import Event
from app.hosted.models import CheckoutSession
from app.payments.models import Payment
from app.payments.service import cod_for
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.integration.test_customers import new_card, new_customer
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration


async def events(sessions: async_sessionmaker[AsyncSession]) -> list[Event]:
    async with sessions() as session:
        return list((await session.execute(select(Event).order_by(Event.seq))).scalars())


def _payment(**kw: Any) -> Payment:
    pid = new_id("pay")
    base: dict[str, Any] = {
        "id": pid,
        "kind": "checkout",
        "status": "pending",
        "job": "AUTH",
        "cod": cod_for(None, pid),
        "amount": 1000,
        "tax": 0,
        "shipping": 0,
        "result_mode": 1,
        "check_attempts": 0,
        "needs_attention": False,
    }
    return Payment(**(base | kw))


async def test_an_event_exists_only_if_its_change_committed_and_shows_what_committed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        p = _payment()
        session.add(p)
        await session.flush()
        outbox.emit(session, "payment.authorized", p)
        await session.rollback()
    assert [e for e in await events(sessions) if e.object_id == p.id] == []

    async with sessions() as session:
        p = _payment()
        session.add(p)
        outbox.emit(session, "payment.authorized", p)
        p.status, p.gid = "authorized", 4242  # changed after the emit, before the commit
        await session.commit()
    [event] = [e for e in await events(sessions) if e.object_id == p.id]
    assert (event.type, event.object_type, event.object_id) == (
        "payment.authorized",
        "payment",
        p.id,
    )
    assert event.id.startswith("evt_")
    assert (event.data["status"], event.data["gid"], event.data["id"]) == ("authorized", 4242, p.id)
    with pytest.raises(ValueError, match="unknown event type"):
        async with sessions() as session:
            outbox.emit(session, "payment.teleported", p)


async def test_payments_and_sessions_tell_the_shop_in_order(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    pid = r.json()["id"]
    r = await app.ops.post(f"/v1/payments/{pid}/capture")
    assert r.status_code == 200, r.text

    declined_cs = await new_session(app, order_id="declined1")
    token = await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=three_ds_of(SESSION))
    r = await app.client.post(
        f"/v1/checkout/sessions/{declined_cs['id']}/pay", json={"token": token}
    )
    assert r.status_code == 402, r.text
    declined = r.json()["payment"]["id"]

    mine = {pid, cs["id"], declined, declined_cs["id"]}
    told = [(e.type, e.object_id) for e in await events(sessions) if e.object_id in mine]
    assert told == [
        ("payment.authorized", pid),
        ("checkout.session.completed", cs["id"]),
        ("payment.captured", pid),
        ("payment.failed", declined),
    ]
    by_type = {e.type: e for e in await events(sessions) if e.object_id in mine}
    authorized = by_type["payment.authorized"].data
    assert authorized["status"] == "authorized" and authorized["gid"]
    completed = by_type["checkout.session.completed"].data
    assert completed["status"] == "completed" and completed["payment_id"] == pid
    assert "url" not in completed
    assert by_type["payment.captured"].data["status"] == "captured"
    failed = by_type["payment.failed"].data
    assert failed["status"] == "failed" and failed["error_code"] == "G12"
    # No token or card number in what the shop is told.
    text = str([e.data for e in await events(sessions) if e.object_id in mine])
    assert token not in text and cards.CARD_OK not in text


async def test_a_card_added_and_deleted_is_told_whichever_path(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await new_customer(app, uid="evcust1")
    await new_card(app, sim, uid="evcust1")
    assert (await app.merchant.delete("/v1/customers/evcust1/cards/1")).status_code == 204
    told = [
        (e.type, e.object_id, e.data["status"], e.data["masked_number"])
        for e in await events(sessions)
        if e.object_type == "customer.card" and e.data["customer_id"] == "evcust1"
    ]
    masked = "*" * 12 + cards.CARD_OK[-4:]
    assert told == [
        ("customer.card.added", "evcust1/1", "active", masked),
        ("customer.card.deleted", "evcust1/1", "deleted", masked),
    ]


async def test_an_expired_page_is_marked_and_told_unless_a_payment_decides(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    idle = await new_session(app, order_id="idle1")
    paying = await new_session(app, order_id="paying1")
    async with sessions() as session:
        for cs_id in (idle["id"], paying["id"]):
            row = await session.get(CheckoutSession, cs_id)
            assert row is not None
            row.expires_at = utcnow() - timedelta(seconds=1)
        session.add(_payment(checkout_session_id=paying["id"], status="unknown"))
        await session.commit()
    assert await expire_sessions(sessions) >= 1
    assert await expire_sessions(sessions) == 0  # once
    async with sessions() as session:
        statuses = {
            cs_id: (await session.get(CheckoutSession, cs_id)).status  # type: ignore[union-attr]
            for cs_id in (idle["id"], paying["id"])
        }
    assert statuses == {idle["id"]: "expired", paying["id"]: "open"}
    told = [(e.type, e.object_id) for e in await events(sessions) if e.object_id == idle["id"]]
    assert told == [("checkout.session.expired", idle["id"])]
    r = await app.client.get(f"/checkout/{idle['id']}")
    assert r.status_code == 410
