"""One charge's evidence through each path that can carry it - the pay's own answer, a
kickback, a reconciliation from the charges search - gives the same payment (issue 23).

A real pay makes one charge at the simulator and records its answer. The payment is then put
back as it stood before the answer (pending, no references, the merchant's amounts, its
checkout session open) and the same charge is reported by a trusted kickback (verified by the
charges search, as every item_code or failure kickback is); put back again, it is settled by
reconciliation. Each time the payment must end the same: status, gid, amounts, error fields,
the checkout session. The search states no order number or approval code: those two come
from the answer and the kickback, and are compared between them.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.base import PAYMENT_REF
from app.hosted.models import CheckoutSession
from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, ledger, new_session, three_ds_of
from tests.integration.test_kickbacks import inbox, settled
from tests.support.fixtures import KICKBACK_PATH, AppFactory, RunningApp

pytestmark = pytest.mark.integration

MONEY = ("status", "gid", "amount", "tax", "shipping", "error_code", "error_message")
REFS = ("god", "ap")
# A product payment's issued content: from the answer and the kickback (the search has none).
CONTENT = ("content_id", "content_password")


async def snapshot(sessions: async_sessionmaker[AsyncSession], pid: str) -> dict[str, Any]:
    async with sessions() as session:
        p = await session.get(Payment, pid)
        assert p is not None and p.checkout_session_id is not None
        cs = await session.get(CheckoutSession, p.checkout_session_id)
        assert cs is not None
        got = {k: getattr(p, k) for k in (*MONEY, *REFS, *CONTENT, "needs_attention")}
        return got | {"session": cs.status}


async def put_back(
    sessions: async_sessionmaker[AsyncSession], pid: str, before: dict[str, Any]
) -> None:
    """The payment as it stood before any evidence about its charge."""
    async with sessions() as session:
        p = await session.get(Payment, pid)
        assert p is not None
        await session.execute(
            update(Payment)
            .where(Payment.id == pid)
            .values(
                status="pending",
                gid=None,
                god=None,
                ap=None,
                content_id=None,
                content_password=None,
                amount=before["amount"],
                tax=before["tax"],
                shipping=before["shipping"],
                error_code=None,
                error_message=None,
                needs_attention=False,
                next_check_at=None,
                unsent=False,
            )
        )
        await session.execute(
            update(CheckoutSession)
            .where(CheckoutSession.id == p.checkout_session_id)
            .values(status="open")
        )
        await session.commit()


def kickback_query(row: dict[str, Any], pid: str) -> str:
    """What the gateway's kickback for this ledger row says (seed 002 fields)."""
    approved = row["status"] != "declined"
    return urlencode(
        {
            "gid": row["gid"],
            "rst": 1 if approved else 2,
            "ap": row["ap"] or "",
            "ec": row["ec"] or "",
            "god": row["god"] or "",
            "cod": row["cod"],
            "am": row["am"],
            "tx": row["tx"],
            "sf": row["sf"],
            "ta": row["ta"],
            **({"id": row["content_id"], "ps": row["content_ps"]} if row["content_id"] else {}),
            PAYMENT_REF: pid,
        }
    )


async def pay(app: RunningApp, sim: httpx.AsyncClient, card: str, **session: Any) -> str:
    body = {**SESSION, **session}
    cs = await new_session(app, **session)
    three_ds = (
        {"iid": body["item_code"], "em": body["email"]}
        if body.get("item_code")
        else three_ds_of(body)
    )
    token = await make_token(sim, card=card, three_ds=three_ds)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code in (200, 402, 422), r.text
    pid: str = r.json().get("id") or r.json()["payment"]["id"]
    return pid


CASES: dict[str, tuple[str, dict[str, Any]]] = {
    # The merchant's session says 5,000 yen; product ITEM001 costs 1,000 + 100 tax.
    "item_code": (
        cards.CARD_OK,
        {"amount": 5000, "tax": 0, "shipping": 0, "item_code": "ITEM001", "job": "CAPTURE"},
    ),
    "amounts": (cards.CARD_OK, {}),
    "declined": (cards.CARD_DECLINE_G12, {"order_id": "orderdeclined"}),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_the_same_evidence_gives_the_same_payment_on_every_path(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    case: str,
) -> None:
    app = await make_app(reconcile_interval_seconds=0)
    card, session_body = CASES[case]
    merchant = {**SESSION, **session_body}
    pid = await pay(app, sim, card, **session_body)
    [row] = await ledger(sim)

    by_answer = await snapshot(sessions, pid)

    await put_back(sessions, pid, merchant)
    r = await app.client.get(f"{KICKBACK_PATH}?{kickback_query(row, pid)}")
    assert r.status_code == 200
    await settled(sessions)
    for _ in range(100):  # the search verification runs after the 200
        if [k.status for k in await inbox(sessions)] != ["received"]:
            break
        await asyncio.sleep(0.05)
    [kb] = await inbox(sessions)
    assert kb.status == "applied", kb.note
    by_kickback = await snapshot(sessions, pid)

    await put_back(sessions, pid, merchant)
    done = await app.ops.post("/v1/reconciliations", json={})
    assert done.status_code == 200 and done.json()["settled"] == 1, done.text
    by_search = await snapshot(sessions, pid)

    money = {k: by_answer[k] for k in (*MONEY, "session", "needs_attention")}
    assert {k: by_kickback[k] for k in money} == money
    assert {k: by_search[k] for k in money} == money
    assert {k: by_kickback[k] for k in (*REFS, *CONTENT)} == {
        k: by_answer[k] for k in (*REFS, *CONTENT)
    }
    assert by_answer["gid"] == row["gid"]
    assert (by_answer["amount"], by_answer["tax"], by_answer["shipping"]) == (
        row["am"],
        row["tx"],
        row["sf"],
    )
    if case == "declined":
        assert by_answer["status"] == "failed" and by_answer["error_code"]
        assert by_answer["session"] == "open"
    else:
        # A product payment is a sale (no jb is sent with iid; the simulator's product is one).
        expected = "captured" if case == "item_code" else "authorized"
        assert by_answer["status"] == expected and by_answer["error_code"] is None
        assert by_answer["session"] == "completed" and by_answer["ap"]
    if case == "item_code":
        # The gateway's price, not the merchant's 5,000 yen, and its issued content.
        assert (by_answer["amount"], by_answer["tax"]) == (1000, 100)
        assert (by_answer["content_id"], by_answer["content_password"]) == ("rpitem001", "pw1000a")
        assert row["jb"] == "CAPTURE"
    else:
        assert by_answer["content_id"] is None
