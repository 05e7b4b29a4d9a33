"""Ops operations over real HTTP against the simulator process: capture, cancel, re-authorize,
resolve; every gateway error path; Idempotency-Key replay, mismatch and races."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import parse_api_keys
from app.db import utcnow
from app.gateway.audit import GatewayCallLog
from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, ledger, new_session, three_ds_of
from tests.support.fixtures import OPS_KEY, AppFactory, RunningApp

pytestmark = pytest.mark.integration
# How audit rows name the ops key (never by its own characters).
OPS_ACTOR = f"ops:{parse_api_keys(f'{OPS_KEY}:ops')[0].label}"


async def paid(
    app: RunningApp, sim: httpx.AsyncClient, *, card: str = cards.CARD_OK, **session: Any
) -> dict[str, Any]:
    """A payment made through checkout: authorized (or captured with job=CAPTURE)."""
    body = {**SESSION, **session}
    cs = await new_session(app, **session)
    three_ds = (
        {"iid": body["item_code"], "em": body["email"]}
        if body.get("item_code")
        else three_ds_of(body)
    )
    token = await make_token(sim, card=card, three_ds=three_ds)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code in (200, 202), r.text
    # As ops see it (with its gid; the shopper's answer has none).
    data: dict[str, Any] = (await app.ops.get(f"/v1/payments/{r.json()['id']}")).json()
    return data


async def ledger_row(sim: httpx.AsyncClient, gid: int) -> dict[str, Any]:
    [row] = [r for r in await ledger(sim) if r["gid"] == gid]
    return row


async def calls(sessions: async_sessionmaker[AsyncSession], pid: str) -> list[GatewayCallLog]:
    async with sessions() as session:
        stmt = select(GatewayCallLog).where(GatewayCallLog.ref == pid).order_by(GatewayCallLog.id)
        return list((await session.execute(stmt)).scalars())


async def detail(app: RunningApp, pid: str) -> dict[str, Any]:
    r = await app.ops.get(f"/v1/payments/{pid}")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    data: dict[str, Any] = r.json()
    return data


async def test_capture_then_cancel(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    p = await paid(app, sim)
    assert p["status"] == "authorized"

    r = await app.ops.post(f"/v1/payments/{p['id']}/capture")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "captured"
    assert (await ledger_row(sim, p["gid"]))["status"] == "captured"

    again = problem(await app.ops.post(f"/v1/payments/{p['id']}/capture"), 409)
    assert again["code"] == "invalid_transition" and again["payment_status"] == "captured"

    r = await app.ops.post(f"/v1/payments/{p['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"
    assert (await ledger_row(sim, p["gid"]))["status"] == "canceled"
    gone = problem(await app.ops.post(f"/v1/payments/{p['id']}/cancel"), 409)
    assert gone["payment_status"] == "canceled"

    trail = await detail(app, p["id"])
    assert [c["operation"] for c in trail["gateway_calls"]] == ["charge_token", "capture", "cancel"]
    moves = [
        (e["from_status"], e["to_status"], e["actor"])
        for e in trail["events"]
        if e["type"] == "status_changed"
    ]
    assert moves == [
        ("pending", "authorized", "gateway"),
        ("authorized", "captured", OPS_ACTOR),
        ("captured", "canceled", OPS_ACTOR),
    ]
    finished = [e["data"]["outcome"] for e in trail["events"] if e["type"] == "operation_finished"]
    assert finished == ["success", "success"]


async def test_operations_need_ops_role_and_a_known_payment(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    assert (await app.merchant.post(f"/v1/payments/{p['id']}/capture")).status_code == 403
    assert (await app.client.post(f"/v1/payments/{p['id']}/cancel")).status_code == 401
    problem(await app.ops.post("/v1/payments/pay_nope/capture"), 404)
    assert (await ledger_row(sim, p["gid"]))["status"] == "authorized"


async def test_sales_er032_is_confirmed_by_search_before_success(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    # Captured at the gateway behind our back (the control panel, another system...).
    behind = await app.app.state.gateway.capture(p["gid"])
    assert behind.outcome == "success"

    r = await app.ops.post(f"/v1/payments/{p['id']}/capture")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "captured"
    trail = await detail(app, p["id"])
    [capture] = [c for c in trail["gateway_calls"] if c["operation"] == "capture"]
    assert capture["error_code"] == "ER032"
    [moved] = [e for e in trail["events"] if e["to_status"] == "captured"]
    assert moved["data"]["source"] == "search" and "ER032" in moved["reason"]


async def test_sales_er032_on_an_uncaptured_payment_is_not_success(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    # 91 days on, the gateway refuses the capture with the same ER032.
    (await sim.post("/_sandbox/clock", json={"advance_seconds": 91 * 86400})).raise_for_status()
    body = problem(await app.ops.post(f"/v1/payments/{p['id']}/capture"), 409)
    assert body["code"] == "capture_rejected" and body["payment_status"] == "authorized"
    assert body["detail"] and "90 days" in body["detail"]
    assert (await detail(app, p["id"]))["status"] == "authorized"


async def test_cancel_er033_confirmed_by_search(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    assert (await app.app.state.gateway.cancel(p["gid"])).outcome == "success"
    r = await app.ops.post(f"/v1/payments/{p['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "canceled"


async def test_capture_of_a_payment_canceled_elsewhere_answers_409_with_the_truth(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    assert (await app.app.state.gateway.cancel(p["gid"])).outcome == "success"
    body = problem(await app.ops.post(f"/v1/payments/{p['id']}/capture"), 409)
    assert body["payment_status"] == "canceled" and body["gateway_code"] == "ER032"
    assert (await detail(app, p["id"]))["status"] == "canceled"


async def test_maintenance_and_unknown_gid_change_nothing(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    (await sim.post("/_sandbox/maintenance", json={"on": True})).raise_for_status()
    body = problem(await app.ops.post(f"/v1/payments/{p['id']}/capture"), 503)
    assert body["gateway_code"] == "ER999" and body["payment_status"] == "authorized"
    (await sim.post("/_sandbox/maintenance", json={"on": False})).raise_for_status()
    # The failed attempt finished: the next one is not blocked.
    ok = await app.ops.post(f"/v1/payments/{p['id']}/capture")
    assert ok.status_code == 200 and ok.json()["status"] == "captured"

    q = await paid(app, sim)
    (await sim.post("/_sandbox/reset")).raise_for_status()  # the gateway forgets the gid
    body = problem(await app.ops.post(f"/v1/payments/{q['id']}/cancel"), 422)
    assert body["gateway_code"] == "ER053" and body["payment_status"] == "authorized"


async def test_capture_timeout_is_settled_by_search_not_guessed(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(gateway_read_timeout=1.0, reconcile_interval_seconds=0)
    p = await paid(app, sim)
    (await sim.post("/_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    (await sim.post("/_sandbox/faults", json={"timeout_after_charge": 1.0})).raise_for_status()

    # The answer is lost but the search shows the capture: captured, truthfully.
    r = await app.ops.post(f"/v1/payments/{p['id']}/capture")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "captured"
    [capture] = [c for c in await calls(sessions, p["id"]) if c.operation == "capture"]
    assert capture.outcome == "unknown" and capture.error_code == "timeout"

    # Now the search cannot answer either: the status stays, a check is scheduled, 504.
    q = await paid_without_faults(app, sim)
    (await sim.post("/_sandbox/config", json={"search_api_key": "rotated"})).raise_for_status()
    body = problem(await app.ops.post(f"/v1/payments/{q['id']}/cancel"), 504)
    assert body["code"] == "gateway_timeout" and body["payment_status"] == "authorized"
    assert (await ledger_row(sim, q["gid"]))["status"] == "canceled"
    async with sessions() as session:
        row = await session.get(Payment, q["id"])
        assert row is not None and row.status == "authorized" and row.next_check_at is not None

    # Once the search answers again, reconciliation settles it to what the gateway did.
    (
        await sim.post("/_sandbox/config", json={"search_api_key": "sandbox-search-key"})
    ).raise_for_status()
    summary = (await app.ops.post("/v1/reconciliations", json={})).json()
    assert [(c["payment_id"], c["result"], c["to_status"]) for c in summary["results"]] == [
        (q["id"], "settled", "canceled")
    ]


async def paid_without_faults(app: RunningApp, sim: httpx.AsyncClient) -> dict[str, Any]:
    saved = (await sim.get("/_sandbox/faults")).json()
    (await sim.post("/_sandbox/faults", json={})).raise_for_status()
    p = await paid(app, sim)
    (await sim.post("/_sandbox/faults", json=saved)).raise_for_status()
    return p


# --- re-authorization ------------------------------------------------------------------------

REAUTH = {"amount": 1200, "tax": 96, "shipping": 500}


async def test_reauthorize_creates_a_linked_payment_and_cancels_the_old(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    r = await app.ops.post(f"/v1/payments/{p['id']}/reauthorize", json=REAUTH)
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["kind"] == "reauth" and new["reauth_of"] == p["id"]
    assert new["status"] == "authorized" and new["total"] == 1796
    assert new["gid"] and new["gid"] != p["gid"] and new["order_id"] == "order100"
    old = await detail(app, p["id"])
    assert old["status"] == "canceled"
    assert any(new["id"] in (e["reason"] or "") for e in old["events"])
    assert (await ledger_row(sim, p["gid"]))["status"] == "canceled"
    row = await ledger_row(sim, new["gid"])
    assert row["status"] == "authorized" and row["ta"] == 1796 and row["reauth_of"] == p["gid"]

    # The new payment can be captured like any other.
    cap = await app.ops.post(f"/v1/payments/{new['id']}/capture")
    assert cap.status_code == 200 and cap.json()["status"] == "captured"
    again = problem(await app.ops.post(f"/v1/payments/{p['id']}/reauthorize", json=REAUTH), 409)
    assert again["payment_status"] == "canceled"


async def test_reauthorize_a_captured_payment_stays_captured(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    p = await paid(app, sim, job="CAPTURE")
    r = await app.ops.post(f"/v1/payments/{p['id']}/reauthorize", json=REAUTH)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "captured" and r.json()["job"] == "CAPTURE"


async def test_reauthorize_rules_are_checked_before_any_call(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    product = await paid(app, sim, item_code="ITEM001", job="CAPTURE")
    body = problem(
        await app.ops.post(f"/v1/payments/{product['id']}/reauthorize", json=REAUTH), 409
    )
    assert body["code"] == "reauth_product_registered"

    old = await paid(app, sim)
    async with sessions() as session:
        row = await session.get(Payment, old["id"])
        assert row is not None
        row.created_at = utcnow() - timedelta(days=70)
        await session.commit()
    body = problem(await app.ops.post(f"/v1/payments/{old['id']}/reauthorize", json=REAUTH), 409)
    assert body["code"] == "reauth_too_old" and body["payment_status"] == "authorized"
    for pid in (product["id"], old["id"]):
        assert [c.operation for c in await calls(sessions, pid)] == ["charge_token"]

    bad = await app.ops.post(f"/v1/payments/{old['id']}/reauthorize", json={"amount": 0})
    assert "amount" in {e["field"] for e in problem(bad, 422)["errors"]}
    bad = await app.ops.post(
        f"/v1/payments/{old['id']}/reauthorize", json={**REAUTH, "phone": "03-1234-5678"}
    )
    assert "phone" in {e["field"] for e in problem(bad, 422)["errors"]}


async def test_reauthorize_refused_by_the_gateway_changes_nothing(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    # On the gateway's clock the payment is two months old: ER030.
    (await sim.post("/_sandbox/clock", json={"advance_seconds": 62 * 86400})).raise_for_status()
    body = problem(await app.ops.post(f"/v1/payments/{p['id']}/reauthorize", json=REAUTH), 502)
    assert body["gateway_code"] == "ER030" and body["payment_status"] == "authorized"
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1
    assert (await ledger_row(sim, p["gid"]))["status"] == "authorized"


# --- idempotency and races -------------------------------------------------------------------


async def test_idempotent_replay_and_mismatch(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    key = {"Idempotency-Key": "reauth-1"}
    first = await app.ops.post(f"/v1/payments/{p['id']}/reauthorize", json=REAUTH, headers=key)
    replay = await app.ops.post(f"/v1/payments/{p['id']}/reauthorize", json=REAUTH, headers=key)
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    other = await app.ops.post(
        f"/v1/payments/{p['id']}/reauthorize", json={**REAUTH, "amount": 1300}, headers=key
    )
    assert problem(other, 422)["errors"][0]["field"] == "Idempotency-Key"
    # Same key on another operation is another request too.
    assert (await app.ops.post(f"/v1/payments/{p['id']}/cancel", headers=key)).status_code == 422
    assert [c.operation for c in await calls(sessions, p["id"])] == ["charge_token", "reauthorize"]

    # A refusal is replayed as it was, too.
    q = await paid(app, sim)
    await app.ops.post(f"/v1/payments/{q['id']}/cancel")
    k2 = {"Idempotency-Key": "capture-after-cancel"}
    a = await app.ops.post(f"/v1/payments/{q['id']}/capture", headers=k2)
    b = await app.ops.post(f"/v1/payments/{q['id']}/capture", headers=k2)
    assert a.status_code == b.status_code == 409 and a.json() == b.json()


@pytest.mark.parametrize("same_key", [True, False])
async def test_twenty_parallel_captures_make_one_gateway_call(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    same_key: bool,
) -> None:
    app = await make_app()
    p = await paid(app, sim)
    # A slow gateway keeps the first capture in flight while the others arrive.
    (await sim.post("/_sandbox/config", json={"slow_seconds": 0.5})).raise_for_status()
    results = await asyncio.gather(
        *[
            app.ops.post(
                f"/v1/payments/{p['id']}/capture",
                headers={"Idempotency-Key": "cap-1" if same_key else f"cap-{i}"},
            )
            for i in range(20)
        ]
    )
    codes = [r.status_code for r in results]
    assert codes.count(200) >= 1 and set(codes) <= {200, 409}, codes
    for r in results:
        if r.status_code == 409 and not same_key:
            assert r.json()["code"] in ("operation_in_progress", "invalid_transition")
    captures = [c for c in await calls(sessions, p["id"]) if c.operation == "capture"]
    assert len(captures) == 1
    assert (await ledger_row(sim, p["gid"]))["status"] == "captured"
    assert (await detail(app, p["id"]))["status"] == "captured"


# --- manual resolution -----------------------------------------------------------------------


async def test_resolve_by_hand_with_a_reason(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app(gateway_read_timeout=1.0, reconcile_interval_seconds=0)
    (await sim.post("/_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    p = await paid(app, sim, card=cards.CARD_TIMEOUT)
    assert p["status"] == "unknown" and p["gid"] is None
    [row] = await ledger(sim)

    bad = await app.ops.post(
        f"/v1/payments/{p['id']}/resolve", json={"status": "captured", "reason": "x"}
    )
    assert "reason" in {e["field"] for e in problem(bad, 422)["errors"]}
    body = {"status": "authorized", "reason": "confirmed in the control panel", "gid": row["gid"]}
    r = await app.ops.post(
        f"/v1/payments/{p['id']}/resolve", json=body, headers={"Idempotency-Key": "res-1"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authorized" and r.json()["gid"] == row["gid"]
    replay = await app.ops.post(
        f"/v1/payments/{p['id']}/resolve", json=body, headers={"Idempotency-Key": "res-1"}
    )
    assert replay.json() == r.json()
    [event] = [e for e in (await detail(app, p["id"]))["events"] if e["actor"] == OPS_ACTOR]
    assert event["reason"] == "confirmed in the control panel" and event["data"]["manual"]

    # Only pending/unknown (or flagged) payments, forward only.
    again = await app.ops.post(f"/v1/payments/{p['id']}/resolve", json={**body, "status": "failed"})
    assert problem(again, 409)["payment_status"] == "authorized"


async def test_operation_in_progress_is_not_stored_as_the_keys_answer(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """A cancel refused only because a capture is running says "not now": its key is not
    spent on that refusal, so the same request with the same key runs once the capture is
    done."""
    app = await make_app()
    p = await paid(app, sim)
    # The capture is applied at once, its answer comes 1.5 s later (within the read timeout).
    (await sim.post("/_sandbox/config", json={"hang_seconds": 1.5})).raise_for_status()
    (await sim.post("/_sandbox/faults", json={"timeout_after_charge": 1.0})).raise_for_status()
    capture = asyncio.create_task(app.ops.post(f"/v1/payments/{p['id']}/capture"))
    await asyncio.sleep(0.5)
    key = {"Idempotency-Key": "cancel-while-capturing"}
    busy = problem(await app.ops.post(f"/v1/payments/{p['id']}/cancel", headers=key), 409)
    assert busy["code"] == "operation_in_progress"
    assert (await capture).status_code == 200
    (await sim.post("/_sandbox/faults", json={})).raise_for_status()
    again = await app.ops.post(f"/v1/payments/{p['id']}/cancel", headers=key)
    assert again.status_code == 200 and again.json()["status"] == "canceled", again.text
    assert "Idempotent-Replayed" not in again.headers
    assert (await ledger_row(sim, p["gid"]))["status"] == "canceled"
