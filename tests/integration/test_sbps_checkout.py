"""Checkout with GATEWAY_PROVIDER=sbps: the app under uvicorn against the SBPS simulator process
over HTTP. Tokens come from the simulator's token endpoint (what com_sbps_system_token.js
does in the browser); the app is sent the token and its key, never a card."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import GatewayCallLog
from app.payments.models import Payment
from app.sandbox.sbps.cards import CARD_DECLINE_G12
from app.sandbox.sbps.testing import TokenPair, make_token
from tests.support import sbps
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

SESSION = {
    "amount": 1000,
    "tax": 80,
    "shipping": 500,
    "job": "AUTH",
    "email": "taro@example.com",
    "success_url": "https://shop.example/thanks",
    "cancel_url": "https://shop.example/cart",
}


@pytest.fixture
async def sbps_app(make_app: AppFactory, sbps_simulator_url: str) -> RunningApp:
    return await make_app(
        gateway_provider="sbps",
        sbps_api_url=f"{sbps_simulator_url}/api/xmlapi.do",
        sbps_merchant_id=sbps.MERCHANT_ID,
        sbps_service_id=sbps.SERVICE_ID,
        sbps_hash_key=sbps.HASH_KEY,
        # These tests charge the token directly (test_sbps_three_ds.py has 3-D Secure).
        sbps_three_ds=False,
        # A lost answer must stay unknown here: no janitor settles it behind the test's back.
        reconcile_interval_seconds=0,
        orphan_sweep_interval_seconds=0,
    )


async def new_session(app: RunningApp, **overrides: Any) -> dict[str, Any]:
    r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, **overrides})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def ledger(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sim.get("_sandbox/ledger")).json()
    return rows


def pay_body(pair: TokenPair) -> dict[str, str]:
    return {"token": pair.token, "token_key": pair.token_key}


async def assert_no_token_at_rest(
    sessions: async_sessionmaker[AsyncSession], *pairs: TokenPair
) -> None:
    async with sessions() as session:
        rows = (await session.scalars(select(GatewayCallLog))).all()
    assert rows
    for row in rows:
        text = f"{row.request} {row.response_body}"
        for pair in pairs:
            assert pair.token not in text and pair.token_key not in text


async def test_pay_via_json_api_authorizes_once(
    sbps_app: RunningApp,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cs = await new_session(sbps_app)
    pair = await make_token(sbps_sim)
    r = await sbps_app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(pair))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authorized"
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True and row["amount"] == 1580
    # Paid: a second pay charges nothing more.
    again = await sbps_app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(await make_token(sbps_sim))
    )
    assert again.status_code in (409, 410), again.text
    assert len(await ledger(sbps_sim)) == 1
    await assert_no_token_at_rest(sessions, pair)


async def test_decline_is_failed_with_a_readable_message(
    sbps_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(sbps_app)
    pair = await make_token(sbps_sim, card=CARD_DECLINE_G12)
    r = await sbps_app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(pair))
    assert r.status_code == 402, r.text
    body = r.json()
    assert body["payment"]["status"] == "failed"
    assert body["payment"]["error_code"]
    # The detail is readable (SBPS's code table, not the bare code).
    assert "card" in body["detail"].lower()
    [row] = await ledger(sbps_sim)
    assert row["approved"] is False


async def test_a_token_without_its_key_is_a_422_naming_token_key(
    sbps_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(sbps_app)
    pair = await make_token(sbps_sim)
    r = await sbps_app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": pair.token}
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["token_key"]
    form = await sbps_app.client.post(f"/checkout/{cs['id']}", data={"tkn": pair.token})
    assert form.status_code == 422
    assert await ledger(sbps_sim) == []
    # Nothing was claimed: the session is still payable.
    ok = await sbps_app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(pair))
    assert ok.status_code == 200, ok.text


async def test_parallel_pays_charge_once(
    sbps_app: RunningApp,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    cs = await new_session(sbps_app)
    pairs = [await make_token(sbps_sim) for _ in range(8)]
    results = await asyncio.gather(
        *[
            sbps_app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(p))
            for p in pairs
        ]
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(200) == 1 and codes.count(409) == 7, codes
    assert len([r for r in await ledger(sbps_sim) if r["approved"]]) == 1
    async with sessions() as session:
        n = await session.scalar(
            select(func.count()).select_from(Payment).where(Payment.checkout_session_id == cs["id"])
        )
    assert n == 1


async def test_timeout_after_the_charge_is_unknown_and_never_resent(
    sbps_app: RunningApp,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    (await sbps_sim.post("_sandbox/config", json={"hang_seconds": 5})).raise_for_status()
    (await sbps_sim.post("_sandbox/faults", json={"timeout_after_charge": 1.0})).raise_for_status()
    cs = await new_session(sbps_app)
    pair = await make_token(sbps_sim)
    r = await sbps_app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(pair))
    (await sbps_sim.post("_sandbox/faults", json={})).raise_for_status()
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "unknown"
    # The charge arrived once; the answer was lost and nothing was sent again.
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True
    async with sessions() as session:
        calls = (
            await session.scalars(
                select(GatewayCallLog).where(GatewayCallLog.operation == "charge_token")
            )
        ).all()
    assert len(calls) == 1
    # The session stays blocked: a second pay cannot charge the card again.
    again = await sbps_app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json=pay_body(await make_token(sbps_sim))
    )
    assert again.status_code == 409, again.text
    assert len(await ledger(sbps_sim)) == 1


async def test_pay_via_form_post_lands_on_the_payment_page(
    sbps_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    cs = await new_session(sbps_app)
    page = await sbps_app.client.get(f"/checkout/{cs['id']}")
    assert page.status_code == 200
    assert "com_sbps_system_token.js" in page.text and "CPToken.js" not in page.text
    assert 'id="tkn_key"' in page.text and "EMV3DSAdapter.js" not in page.text
    # Honest about 3-D Secure: SBPS_THREE_DS is off here, so it is not run.
    assert "3-Dセキュア" in page.text and "行われません" in page.text
    assert "com_sbps_system_tds2infotoken.js" not in page.text
    # The token script is the standalone simulator's: the CSP lets in that one URL (and the
    # page's nonce), not the whole origin.
    csp = page.headers["content-security-policy"]
    script_src = csp.split("script-src ")[1].split(";")[0].split()
    assert script_src[0].startswith("'nonce-") and script_src[1:] == [
        sbps_app.settings.sbps_token_js,
        f"{sbps_app.settings.public_base_url}/static/checkout/checkout.js",
    ]
    pair = await make_token(sbps_sim)
    r = await sbps_app.client.post(
        f"/checkout/{cs['id']}",
        data={"tkn": pair.token, "tkn_key": pair.token_key},
        headers={"Sec-Fetch-Mode": "navigate"},
    )
    assert r.status_code == 303, r.text
    assert f"/checkout/{cs['id']}/payments/" in r.headers["location"]
    result = await sbps_app.client.get(r.headers["location"])
    assert result.status_code == 200 and "https://shop.example/thanks" in result.text
    # Every page's footer names the gateway the card went to, the result page's too.
    for shown in (page, result):
        assert "SBペイメントサービス" in shown.text and "ROBOT PAYMENT" not in shown.text
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True


async def test_installments_chosen_on_the_page_reach_sbps(
    sbps_app: RunningApp, sbps_sim: httpx.AsyncClient
) -> None:
    """The page's payment-method select (md, pt) becomes SBPS's dealings_type 61 and
    divide_times; revolving is dealings_type 80."""
    cs = await new_session(sbps_app, payment_methods=["10", "61", "80"], installment_counts=[3, 6])
    page = await sbps_app.client.get(f"/checkout/{cs['id']}")
    assert 'value="61-6"' in page.text and 'value="80"' in page.text
    pair = await make_token(sbps_sim)
    r = await sbps_app.client.post(
        f"/checkout/{cs['id']}",
        data={"tkn": pair.token, "tkn_key": pair.token_key, "pay_option": "61-6"},
        headers={"Sec-Fetch-Mode": "navigate"},
    )
    assert r.status_code == 303, r.text
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True
    assert (row["dealings_type"], row["divide_times"]) == ("61", "6")
    other = await new_session(sbps_app, order_id="sbpsrevolving", payment_methods=["80"])
    pair = await make_token(sbps_sim)
    r = await sbps_app.client.post(
        f"/checkout/{other['id']}",
        data={"tkn": pair.token, "tkn_key": pair.token_key, "pay_option": "80"},
        headers={"Sec-Fetch-Mode": "navigate"},
    )
    assert r.status_code == 303, r.text
    rows = await ledger(sbps_sim)
    assert [r["dealings_type"] for r in rows] == ["61", "80"]
