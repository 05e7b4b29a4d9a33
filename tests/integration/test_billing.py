"""Billing robo through our HTTP API (the app under uvicorn, the simulator process over HTTP):
`POST /v1/billing/payment-methods/credit-card`, card pages (`POST /v1/billing/card-sessions`,
then the page and its form post), error mapping, idempotency, the masked audit trail."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing.models import BillingCardRegistration
from app.config import SANDBOX_BILLING_ROBO_ACCESS_KEY
from app.gateway.audit import GatewayCallLog
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

EMAIL = "keiri@example.co.jp"
TEL = "0312345678"
ZERO_3DS = {"am": "0", "tx": "0", "sf": "0", "em": EMAIL, "pn": TEL}
PATH = "/v1/billing/payment-methods/credit-card"


async def payer(sim: httpx.AsyncClient, code: str = "B-001") -> None:
    body = {
        "billing_code": code,
        "email": EMAIL,
        "tel": TEL,
        "payment_methods": [{"number": 1, "code": "card-1"}, {"number": 2}],
    }
    assert (await sim.post("/_sandbox/billing/payers", json=body)).status_code == 200


async def card_on(sim: httpx.AsyncClient, number: int, code: str = "B-001") -> Any:
    data = (await sim.get(f"/_sandbox/billing/payers/{code}")).json()
    return next(m for m in data["payment_methods"] if m["number"] == number)["card"]


def body(token: str, **extra: Any) -> dict[str, Any]:
    return {"billing_code": "B-001", "billing_payment_method_number": 1, "token": token, **extra}


async def audit_text(sessions: async_sessionmaker[AsyncSession]) -> str:
    async with sessions() as session:
        rows = (await session.execute(text("SELECT * FROM gateway_calls"))).all()
        regs = (await session.execute(text("SELECT * FROM billing_card_registrations"))).all()
    return repr(rows) + repr(regs)


async def test_register_a_card(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    r = await app.merchant.post(PATH, json=body(token, email=EMAIL, tel="03-1234-5678"))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["status"] == "succeeded" and out["id"].startswith("bcr_")
    assert out["billing_code"] == "B-001" and out["billing_payment_method_number"] == 1
    assert (await card_on(sim, 1))["cn"].endswith("1111")
    got = await app.merchant.get(f"/v1/billing/registrations/{out['id']}")
    assert got.status_code == 200 and got.json()["status"] == "succeeded"

    async with sessions() as session:
        calls = (await session.execute(select(GatewayCallLog))).scalars().all()
        row = await session.get(BillingCardRegistration, out["id"])
    assert row is not None and row.tel == TEL, "hyphens removed, as billing robo compares"
    [call] = calls
    assert call.ref == out["id"] and call.operation == "billing_register_card"
    assert call.request["tel"] == TEL and call.outcome == "success"
    audit = await audit_text(sessions)
    assert token not in audit and SANDBOX_BILLING_ROBO_ACCESS_KEY not in audit
    assert "tkn(len=" in audit

    # By payment method code, and without the optional e-mail/phone.
    token2 = await make_token(sim, card=cards.CARD_3DS_CHALLENGE, three_ds=ZERO_3DS)
    by_code = {"billing_code": "B-001", "billing_payment_method_code": "card-1", "token": token2}
    r2 = await app.merchant.post(PATH, json=by_code)
    assert r2.status_code == 201, r2.text
    assert (await card_on(sim, 1))["cn"].endswith("0317")
    assert (await app.client.post(PATH, json=by_code)).status_code == 401


async def test_reused_or_expired_token_is_a_readable_422(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    assert (await app.merchant.post(PATH, json=body(token))).status_code == 201
    reused = await app.merchant.post(PATH, json=body(token, billing_payment_method_number=2))
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"].startswith("application/problem+json")
    problem = reused.json()
    assert problem["code"] == "token_invalid" and problem["gateway_code"] == "ER584"
    assert problem["errors"][0]["field"] == "token"
    assert "already used" in problem["detail"]
    assert problem["registration"]["status"] == "failed"
    assert problem["registration"]["error_code"] == "ER584"
    assert await card_on(sim, 2) is None

    stale = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post("/_sandbox/clock", json={"advance_seconds": 16 * 60})
    expired = await app.merchant.post(PATH, json=body(stale))
    assert expired.status_code == 422
    assert expired.json()["code"] == "token_expired" and expired.json()["gateway_code"] == "ER585"
    assert "expired" in expired.json()["detail"]
    audit = await audit_text(sessions)
    assert token not in audit and stale not in audit


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        (
            {"billing_payment_method_code": "card-1"},
            ["billing_payment_method_number", "billing_payment_method_code"],
        ),
        (
            {"billing_payment_method_number": None},
            ["billing_payment_method_number", "billing_payment_method_code"],
        ),
        ({"billing_code": "x" * 21}, ["billing_code"]),
        ({"billing_code": "with space"}, ["billing_code"]),
        ({"billing_payment_method_number": 10**18}, ["billing_payment_method_number"]),
        ({"tel": "03-1234-ABCD"}, ["tel"]),
        ({"tel": "1" * 16}, ["tel"]),
        ({"email": "not-an-email"}, ["email"]),
        ({"token": "short"}, ["token"]),
        ({"cn": cards.CARD_OK}, ["body"]),
    ],
)
async def test_bad_input_names_the_field_and_calls_nobody(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    change: dict[str, Any],
    fields: list[str],
) -> None:
    app = await make_app()
    r = await app.merchant.post(PATH, json={**body("abcdefgh12345"), **change})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert sorted(e["field"] for e in r.json()["errors"]) == sorted(fields)
    assert cards.CARD_OK not in r.text
    async with sessions() as session:
        assert (await session.execute(select(GatewayCallLog))).first() is None
        assert (await session.execute(select(BillingCardRegistration))).first() is None


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"billing_code": "NOBODY"}, 422, "billing_code_invalid", "billing_code"),
        (
            {"billing_payment_method_number": 7},
            422,
            "payment_method_number_invalid",
            "billing_payment_method_number",
        ),
        ({"email": "other@example.co.jp"}, 422, "email_mismatch", "email"),
        ({"tel": "0399999999"}, 422, "tel_mismatch", "tel"),
    ],
)
async def test_billing_robo_codes_name_the_field(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    change: dict[str, Any],
    status: int,
    code: str,
    field: str,
) -> None:
    app = await make_app()
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    r = await app.merchant.post(PATH, json=body(token, **change))
    assert r.status_code == status, r.text
    problem = r.json()
    assert problem["code"] == code and problem["errors"][0]["field"] == field
    assert problem["gateway_code"].startswith("34")


async def test_setup_maintenance_and_rate_limit_answers(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post("/_sandbox/config", json={"billing_robo_allowed_ips": ["192.0.2.1"]})
    ip = await app.merchant.post(PATH, json=body(token))
    assert ip.status_code == 502 and ip.json()["code"] == "source_ip_rejected"
    assert ip.json()["gateway_code"] == "13"
    await sim.post("/_sandbox/config", json={"billing_robo_allowed_ips": []})

    await sim.post("/_sandbox/maintenance", json={"on": True})
    down = await app.merchant.post(PATH, json=body(token))
    assert down.status_code == 503 and down.json()["code"] == "maintenance"
    await sim.post("/_sandbox/maintenance", json={"on": False})

    # Limited for longer than the client may wait: a 429 at once, nothing registered.
    await sim.post(
        "/_sandbox/config",
        json={"billing_robo_rate_limit": 0, "billing_robo_rate_window_seconds": 300},
    )
    limited = await app.merchant.post(PATH, json=body(token))
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert limited.headers.get("retry-after")
    await sim.post("/_sandbox/config", json={"billing_robo_rate_limit": 300})
    # None of the above consumed the token.
    assert (await app.merchant.post(PATH, json=body(token))).status_code == 201


async def test_idempotency_key_replays_instead_of_resending_the_token(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    headers = {"Idempotency-Key": "reg-42"}
    first = await app.merchant.post(PATH, json=body(token), headers=headers)
    again = await app.merchant.post(PATH, json=body(token), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json()["id"] == first.json()["id"]
    other = await app.merchant.post(PATH, json=body(token, email=EMAIL), headers=headers)
    assert other.status_code == 422 and other.json()["errors"][0]["field"] == "Idempotency-Key"
    async with sessions() as session:
        calls = (await session.execute(select(GatewayCallLog))).scalars().all()
    assert len(calls) == 1


async def test_lost_answer_is_202_unknown(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await payer(sim)
    await sim.post("/_sandbox/config", json={"hang_seconds": 6})
    token = await make_token(sim, card=cards.CARD_TIMEOUT, three_ds=ZERO_3DS)
    r = await app.merchant.post(PATH, json=body(token))
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "unknown" and r.json()["error_code"] == "timeout"
    assert await card_on(sim, 1) is not None, "it was registered: 'failed' would be a lie"


# --- card pages ------------------------------------------------------------------------------


def page_three_ds(html: str) -> dict[str, str]:
    match = re.search(r"data-three-ds='([^']*)'", html)
    assert match, "the page carries its 3-D Secure values"
    values: dict[str, str] = json.loads(unescape(match.group(1)))
    return values


async def new_page(app: RunningApp, **extra: Any) -> dict[str, Any]:
    data = {
        "billing_code": "B-001",
        "billing_payment_method_number": 1,
        "email": EMAIL,
        "tel": "03-1234-5678",
        "success_url": "https://shop.example/billing/done",
        **extra,
    }
    r = await app.merchant.post("/v1/billing/card-sessions", json=data)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def test_card_page_registers_on_the_payer(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await payer(sim)
    cs = await new_page(app)
    assert cs["kind"] == "billing_card" and cs["status"] == "open"
    assert cs["tel"] == TEL and cs["url"].endswith(f"/checkout/{cs['id']}")
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert page.status_code == 200
    assert "B-001" in page.text and 'id="billing-code"' in page.text
    three_ds = page_three_ds(page.text)
    assert three_ds == {"am": "0", "tx": "0", "sf": "0", "em": EMAIL, "pn": TEL}

    # What the page script does: token + 3-D Secure with exactly those values, post tkn.
    token = await make_token(sim, three_ds=three_ds)
    done = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token, "lang": "en"})
    assert done.status_code == 200, done.text
    assert 'data-status="succeeded"' in done.text and "registered" in done.text
    assert (await card_on(sim, 1))["cn"].endswith("1111")
    state = (await app.merchant.get(f"/v1/billing/card-sessions/{cs['id']}")).json()
    assert state["status"] == "completed" and state["registration"]["status"] == "succeeded"
    # A completed page shows its result; a second post registers nothing more.
    again = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token, "lang": "en"})
    assert 'data-status="succeeded"' in again.text
    async with sessions() as session:
        assert len((await session.execute(select(GatewayCallLog))).all()) == 1
    # Not a payment session: the JSON pay refuses it.
    pay = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert pay.status_code in (409, 422)


async def test_card_page_shows_readable_token_errors(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await payer(sim)
    cs = await new_page(app)
    used = await make_token(sim, three_ds=ZERO_3DS)
    assert (await app.merchant.post(PATH, json=body(used))).status_code == 201
    r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": used, "lang": "en"})
    assert r.status_code == 422
    assert 'data-status="failed"' in r.text
    assert "invalid or was already used" in unescape(r.text)
    assert f'href="/checkout/{cs["id"]}?lang=en"' in r.text, "offers another try"

    stale = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post("/_sandbox/clock", json={"advance_seconds": 16 * 60})
    ja = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": stale, "lang": "ja"})
    assert ja.status_code == 422 and "有効期限(15分)が切れました" in unescape(ja.text)
    state = (await app.merchant.get(f"/v1/billing/card-sessions/{cs['id']}")).json()
    assert state["status"] == "open" and state["registration"]["error_code"] == "ER585"


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"email": None, "tel": None}, ["email", "tel"]),
        (
            {"billing_payment_method_code": "card-1"},
            ["billing_payment_method_number", "billing_payment_method_code"],
        ),
        ({"tel": "phone"}, ["tel"]),
        ({"success_url": "javascript:alert(1)"}, ["success_url"]),
    ],
)
async def test_card_page_bad_input(
    make_app: AppFactory, change: dict[str, Any], fields: list[str]
) -> None:
    app = await make_app()
    data = {"billing_code": "B-001", "billing_payment_method_number": 1, "email": EMAIL, **change}
    r = await app.merchant.post("/v1/billing/card-sessions", json=data)
    assert r.status_code == 422, r.text
    assert sorted(e["field"] for e in r.json()["errors"]) == sorted(fields)
