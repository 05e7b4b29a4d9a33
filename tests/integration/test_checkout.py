"""Checkout through the real HTTP API: sessions, pay, races, errors, status for ops."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

SESSION = {
    "amount": 1000,
    "tax": 80,
    "shipping": 500,
    "job": "AUTH",
    "order_id": "order100",
    "email": "taro@example.com",
    "success_url": "https://shop.example/thanks",
    "cancel_url": "https://shop.example/cart",
}


def three_ds_of(body: dict[str, Any]) -> dict[str, str]:
    return {
        "am": str(body["amount"]),
        "tx": str(body["tax"]),
        "sf": str(body["shipping"]),
        "em": body["email"],
    }


async def new_session(app: RunningApp, **overrides: Any) -> dict[str, Any]:
    body = {**SESSION, **overrides}
    r = await app.merchant.post("/v1/checkout/sessions", json=body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def ledger(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    body = (await sim.get("/_sandbox/ledger")).json()
    rows: list[dict[str, Any]] = body if isinstance(body, list) else body["transactions"]
    return rows


async def test_create_session_validates_and_is_idempotent(make_app: AppFactory) -> None:
    app = await make_app()
    created = await new_session(app)
    assert created["url"].endswith(f"/checkout/{created['id']}")
    assert created["total"] == 1580 and created["status"] == "open"

    headers = {"Idempotency-Key": "create-1"}
    first = await app.merchant.post("/v1/checkout/sessions", json=SESSION, headers=headers)
    replay = await app.merchant.post("/v1/checkout/sessions", json=SESSION, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert first.json()["id"] == replay.json()["id"]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    other = await app.merchant.post(
        "/v1/checkout/sessions", json={**SESSION, "amount": 2000}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"amount": 100_000_000}, "amount"),
        ({"amount": 0}, "amount"),
        ({"tax": -1}, "tax"),
        ({"order_id": "あ" * 17}, "order_id"),
        ({"order_id": "a,b"}, "order_id"),
        ({"customer_id": "not-alnum!"}, "customer_id"),
        ({"phone": "03-1234-5678"}, "phone"),
        ({"email": "x" * 95 + "@ex.jp"}, "email"),
        ({"job": "SALES"}, "job"),
    ],
)
async def test_bad_session_input_names_the_field(
    make_app: AppFactory, patch: dict[str, Any], field: str
) -> None:
    app = await make_app()
    r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, **patch})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json()["errors"]}


async def test_a_body_that_is_not_json_is_named_as_such(make_app: AppFactory) -> None:
    app = await make_app()
    headers = {"Content-Type": "application/json"}
    r = await app.merchant.post("/v1/checkout/sessions", content=b'{"amount": 1', headers=headers)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    [error] = r.json()["errors"]
    assert error["field"] == "body" and error["message"].startswith("The body is not valid JSON")


async def test_email_or_phone_is_required(make_app: AppFactory) -> None:
    app = await make_app()
    body = {k: v for k, v in SESSION.items() if k != "email"}
    r = await app.merchant.post("/v1/checkout/sessions", json=body)
    assert r.status_code == 422 and "email or phone" in r.text


async def test_auth_required_and_roles(make_app: AppFactory) -> None:
    app = await make_app()
    assert (await app.client.post("/v1/checkout/sessions", json=SESSION)).status_code == 401
    bad = await app.client.post(
        "/v1/checkout/sessions", json=SESSION, headers={"Authorization": "Bearer nope-nope-nope"}
    )
    assert bad.status_code == 401
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert (await app.merchant.get("/v1/payments")).status_code == 403
    assert (await app.ops.get("/v1/payments")).status_code == 200


async def test_pay_success_visible_to_ops(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    payment = r.json()
    # The shopper's answer carries no gateway reference (gids are sequential); ops see it.
    assert payment["status"] == "authorized" and "gid" not in payment and "god" not in payment

    detail = (await app.ops.get(f"/v1/payments/{payment['id']}")).json()
    assert detail["order_id"] == "order100" and detail["total"] == 1580 and detail["gid"]
    assert [c["operation"] for c in detail["gateway_calls"]] == ["charge_token"]
    assert token not in str(detail)
    listed = (await app.ops.get("/v1/payments", params={"order_id": "order100"})).json()
    assert [p["id"] for p in listed["data"]] == [payment["id"]]

    again = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert again.status_code == 409
    [row] = await ledger(sim)
    assert row["gid"] == detail["gid"] and row["status"] == "authorized"


async def test_decline_then_retry_with_another_card(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    bad = await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": bad})
    assert r.status_code == 402
    assert r.json()["payment"]["status"] == "failed"
    assert r.json()["gateway_code"] == "G12"
    good = await make_token(sim, three_ds=three_ds_of(SESSION))
    ok = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": good})
    assert ok.status_code == 200 and ok.json()["status"] == "authorized"


async def test_three_ds_failure_and_token_reuse(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    fail = await make_token(sim, card=cards.CARD_3DS_FAIL, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": fail})
    assert r.status_code == 402 and r.json()["gateway_code"] == "ER900"

    cs2 = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    assert (
        await app.client.post(f"/v1/checkout/sessions/{cs2['id']}/pay", json={"token": token})
    ).status_code == 200
    cs3 = await new_session(app)
    reused = await app.client.post(f"/v1/checkout/sessions/{cs3['id']}/pay", json={"token": token})
    assert reused.status_code == 422 and reused.json()["gateway_code"] == "ER584"


async def test_expired_and_unknown_sessions(make_app: AppFactory) -> None:
    app = await make_app()
    missing = await app.client.post(
        "/v1/checkout/sessions/cs_nope/pay", json={"token": "abcdefgh12"}
    )
    assert missing.status_code == 404
    cs = await new_session(app, expires_in_minutes=1)
    async with app.app.state.sessions() as session:
        from datetime import timedelta

        from app.db import utcnow
        from app.hosted.models import CheckoutSession

        row = await session.get(CheckoutSession, cs["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        await session.commit()
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "abcdefgh12"})
    assert r.status_code == 410
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert page.status_code == 410 and "text/html" in page.headers["content-type"]
    assert (await app.client.get("/checkout/cs_nope")).status_code == 404


async def test_card_data_is_refused(make_app: AppFactory) -> None:
    app = await make_app()
    cs = await new_session(app)
    r = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay",
        json={"token": "abcdefgh12", "cn": "4444333322221111", "cvv": "123"},
    )
    assert r.status_code == 422 and "card data" in r.text
    assert "4444333322221111" not in r.text
    form = await app.client.post(
        f"/checkout/{cs['id']}", data={"tkn": "abcdefgh12", "cn": "4444333322221111"}
    )
    assert form.status_code == 422


async def test_parallel_pays_charge_once(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = await new_session(app)
    tokens = [await make_token(sim, three_ds=three_ds_of(SESSION)) for _ in range(20)]
    results = await asyncio.gather(
        *[
            app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": t})
            for t in tokens
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(409) == 19, codes
    charged = [r for r in await ledger(sim) if r["status"] in ("authorized", "captured")]
    assert len(charged) == 1
    async with sessions() as session:
        n = await session.scalar(
            select(func.count()).select_from(Payment).where(Payment.checkout_session_id == cs["id"])
        )
    assert n == 1


async def test_form_post_renders_result_page(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    cs = await new_session(app)
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'nonce-" in csp
    assert "'unsafe-inline'" not in csp and "'self'" not in csp.split("script-src")[1].split(";")[0]
    assert page.headers["x-content-type-options"] == "nosniff"
    for element in ('id="cn"', 'id="tkn"', 'id="mainform"', 'id="purchase"', "EMV3DS_INPUT_FORM"):
        assert element in page.text
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token})
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "https://shop.example/thanks" in r.text
    # Reopened (a bookmark, Back): the receipt, not an error.
    again = await app.client.get(f"/checkout/{cs['id']}")
    assert again.status_code == 200 and 'data-status="succeeded"' in again.text
    assert 'href="https://shop.example/thanks"' in again.text and 'id="cn"' not in again.text


async def test_gateway_maintenance_charges_nothing_and_says_try_later(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    (await sim.post("/_sandbox/maintenance", json={"on": True})).raise_for_status()
    try:
        r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
        assert r.status_code == 503, r.text
        assert r.json()["gateway_code"] == "ER999" and r.json()["payment"]["status"] == "failed"
        assert "maintenance" in r.json()["detail"]
        page = await app.client.post(
            f"/checkout/{cs['id']}", data={"tkn": token}, headers={"Accept-Language": "ja"}
        )
        assert page.status_code == 503 and "text/html" in page.headers["content-type"]
        assert "メンテナンス" in page.text
        assert await ledger(sim) == []
    finally:
        (await sim.post("/_sandbox/maintenance", json={"on": False})).raise_for_status()
    # After the window the same session can still be paid.
    good = await make_token(sim, three_ds=three_ds_of(SESSION))
    ok = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": good})
    assert ok.status_code == 200 and ok.json()["status"] == "authorized"


async def test_a_simulator_reset_does_not_hand_out_our_gids_again(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    """Our database outlives `_sandbox/reset`: the next charge must get a new gid, not one
    a payment of ours holds (gid is unique: the answer could not be recorded, 'unknown')."""
    app = await make_app()
    pids = []
    for i in range(2):
        cs = await new_session(app, order_id=f"reset{i}")
        token = await make_token(sim, three_ds=three_ds_of(SESSION))
        r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
        assert r.status_code == 200, r.text
        pids.append(r.json()["id"])
        (await sim.post("/_sandbox/reset")).raise_for_status()
    first, second = [(await app.ops.get(f"/v1/payments/{p}")).json() for p in pids]
    assert first["status"] == second["status"] == "authorized"
    assert first["gid"] and second["gid"] and second["gid"] > first["gid"]
