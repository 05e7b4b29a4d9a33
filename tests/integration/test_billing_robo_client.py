"""The billing-robo client against the simulator process over real HTTP: success, the API's own
codes 3401-3407, common codes (11, 12, 13, 19), gateway ER codes inside HTTP 200, the 429
rate limit with bounded backoff, and lost answers reported as unknown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.config import SANDBOX_BILLING_ROBO_ACCESS_KEY, SANDBOX_BILLING_ROBO_USER_ID
from app.gateway.base import BillingCardRegistration, GatewayCall, Outcome
from app.gateway.billingrobo import BillingRoboClient
from app.sandbox import cards
from app.sandbox.testing import make_token

pytestmark = pytest.mark.integration

EMAIL = "keiri@example.co.jp"
TEL = "0312345678"
# What billing robo's 3-D Secure binds: am=tx=sf=0 and the payer's registered e-mail/phone.
ZERO_3DS = {"am": "0", "tx": "0", "sf": "0", "em": EMAIL, "pn": TEL}


class Calls(list[GatewayCall]):
    async def __call__(self, call: GatewayCall) -> None:
        self.append(call)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as client:
        yield client


def client(
    http: httpx.AsyncClient, url: str, calls: Calls | None = None, **kwargs: Any
) -> BillingRoboClient:
    values: dict[str, Any] = {
        "user_id": SANDBOX_BILLING_ROBO_USER_ID,
        "access_key": SANDBOX_BILLING_ROBO_ACCESS_KEY,
        "backoff": (0.1,),
        "max_wait_seconds": 3.0,
    }
    values.update(kwargs)
    return BillingRoboClient(http=http, base_url=url, recorder=calls, **values)


async def payer(sim: httpx.AsyncClient, code: str = "B-001", **extra: Any) -> dict[str, Any]:
    body = {
        "billing_code": code,
        "email": EMAIL,
        "tel": TEL,
        "payment_methods": [{"number": 1, "code": "card-1"}, {"number": 2}],
        **extra,
    }
    r = await sim.post("/_sandbox/billing/payers", json=body)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def card_on(sim: httpx.AsyncClient, code: str, number: int) -> dict[str, Any] | None:
    data = (await sim.get(f"/_sandbox/billing/payers/{code}")).json()
    method = next(m for m in data["payment_methods"] if m["number"] == number)
    card: dict[str, Any] | None = method["card"]
    return card


def reg(token: str, /, **fields: Any) -> BillingCardRegistration:
    values: dict[str, Any] = {"billing_code": "B-001", "payment_method_number": 1, "token": token}
    values.update(fields)
    return BillingCardRegistration(**values)


async def test_registers_the_card_and_audits_it_masked(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    token = await make_token(sim, card=cards.CARD_OK, three_ds=ZERO_3DS)
    calls = Calls()
    result = await client(http, simulator_url, calls).register_credit_card(
        reg(token, email=EMAIL, tel=TEL), ref="bcr_test"
    )
    assert result.outcome == Outcome.SUCCESS and result.error is None, result
    assert result.attempts == 1
    card = await card_on(sim, "B-001", 1)
    assert card is not None and card["cn"].endswith("1111")
    assert await card_on(sim, "B-001", 2) is None
    # By code instead of number: payment method "card-1" is number 1.
    token2 = await make_token(sim, card=cards.CARD_DECLINE_G55, three_ds=ZERO_3DS)
    by_code = await client(http, simulator_url, calls).register_credit_card(
        reg(token2, payment_method_number=None, payment_method_code="card-1")
    )
    assert by_code.outcome == Outcome.DECLINED and by_code.error is not None
    assert by_code.error.code == "G55"  # the gateway's check of the card, inside an HTTP 200
    assert calls[-1].http_status == 200

    [call, _] = calls
    assert call.operation == "billing_register_card" and call.ref == "bcr_test"
    assert call.endpoint.endswith("/api/v1.0/billing_payment_method/credit_card_token")
    assert call.http_status == 200 and call.response_body == '{"error":null}'
    audit = repr(call.request) + (call.response_body or "")
    assert token not in audit and SANDBOX_BILLING_ROBO_ACCESS_KEY not in audit
    assert call.request["token"].startswith("tkn(len=")
    assert call.request["access_key"].endswith(f"(len={len(SANDBOX_BILLING_ROBO_ACCESS_KEY)})")
    assert call.request["billing_code"] == "B-001" and call.request["tel"] == TEL


@pytest.mark.parametrize(
    ("fields", "code", "stable"),
    [
        ({"billing_code": "NOBODY"}, "3401", "billing_code_invalid"),
        ({"billing_code": "B 001"}, "3401", "billing_code_invalid"),
        ({"payment_method_number": 9}, "3402", "payment_method_number_invalid"),
        (
            {"payment_method_number": None, "payment_method_code": "nope"},
            "3403",
            "payment_method_code_invalid",
        ),
        ({"payment_method_code": "card-1"}, "3404", "payment_method_ambiguous"),
        ({"token": "not a token!"}, "3405", "token_invalid"),
        ({"email": "other@example.co.jp"}, "3406", "email_mismatch"),
        ({"tel": "03-1234-5678"}, "3407", "tel_mismatch"),
        ({"tel": "0399999999"}, "3407", "tel_mismatch"),
    ],
)
async def test_own_error_codes(
    sim: httpx.AsyncClient,
    simulator_url: str,
    http: httpx.AsyncClient,
    fields: dict[str, Any],
    code: str,
    stable: str,
) -> None:
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    calls = Calls()
    result = await client(http, simulator_url, calls).register_credit_card(reg(token, **fields))
    assert result.outcome == Outcome.FAILED and result.error is not None
    assert (result.error.code, result.error.stable_code) == (code, stable)
    assert result.error.http_status == 422 and result.error.message_en
    assert calls[0].http_status == 400 and f'"code":{code}' in (calls[0].response_body or "")
    # Refused before the gateway: the token is still good and nothing was registered.
    assert await card_on(sim, "B-001", 1) is None
    ok = await client(http, simulator_url).register_credit_card(reg(token))
    assert ok.outcome == Outcome.SUCCESS


@pytest.mark.parametrize(
    ("setup", "kwargs", "code", "outcome", "http_status"),
    [
        ({"billing_robo_allowed_ips": ["192.0.2.1"]}, {}, "13", Outcome.FAILED, 401),
        ({}, {"user_id": "someone@example.com"}, "11", Outcome.FAILED, 401),
        ({}, {"access_key": "wrong-access-key-123"}, "12", Outcome.FAILED, 401),
    ],
)
async def test_common_error_codes(
    sim: httpx.AsyncClient,
    simulator_url: str,
    http: httpx.AsyncClient,
    setup: dict[str, Any],
    kwargs: dict[str, Any],
    code: str,
    outcome: Outcome,
    http_status: int,
) -> None:
    await payer(sim)
    if setup:
        assert (await sim.post("/_sandbox/config", json=setup)).status_code == 200
    token = await make_token(sim, three_ds=ZERO_3DS)
    calls = Calls()
    result = await client(http, simulator_url, calls, **kwargs).register_credit_card(reg(token))
    assert result.outcome == outcome and result.error is not None
    assert result.error.code == code and calls[0].http_status == http_status
    if code == "13":
        assert result.error.stable_code == "source_ip_rejected"
        assert "IP" in result.error.message_en
    assert result.error.http_status == 502  # our setup, not the caller's request
    assert await card_on(sim, "B-001", 1) is None


async def test_maintenance_is_unavailable(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post("/_sandbox/maintenance", json={"on": True})
    calls = Calls()
    result = await client(http, simulator_url, calls).register_credit_card(reg(token))
    assert result.outcome == Outcome.UNAVAILABLE and result.error is not None
    assert result.error.code == "19" and result.error.http_status == 503
    assert calls[0].http_status == 503 and result.attempts == 1


async def test_gateway_codes_inside_http_200(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    robo = client(http, simulator_url)
    token = await make_token(sim, three_ds=ZERO_3DS)
    assert (await robo.register_credit_card(reg(token))).outcome == Outcome.SUCCESS
    reused = await robo.register_credit_card(reg(token, payment_method_number=2))
    assert reused.outcome == Outcome.FAILED and reused.error is not None
    assert (reused.error.code, reused.error.stable_code) == ("ER584", "token_invalid")
    assert reused.call.http_status == 200
    assert await card_on(sim, "B-001", 2) is None

    stale = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post("/_sandbox/clock", json={"advance_seconds": 16 * 60})
    expired = await robo.register_credit_card(reg(stale))
    assert expired.error is not None and expired.error.code == "ER585"
    assert expired.error.stable_code == "token_expired"

    # 3-D Secure run for a payment (am=1000), or with another phone than the payer's.
    for three_ds in ({**ZERO_3DS, "am": "1000"}, {**ZERO_3DS, "pn": "0399999999"}):
        wrong = await make_token(sim, three_ds=three_ds)
        mismatch = await robo.register_credit_card(reg(wrong))
        assert mismatch.outcome == Outcome.DECLINED and mismatch.error is not None
        assert mismatch.error.code == "ER901"
    failed = await make_token(sim, card=cards.CARD_3DS_FAIL, three_ds=ZERO_3DS)
    declined = await robo.register_credit_card(reg(failed))
    assert declined.error is not None and declined.error.code == "ER900"
    assert declined.error.stable_code == "three_ds_failed"


async def test_429_is_retried_after_retry_after(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    config = {"billing_robo_rate_limit": 2, "billing_robo_rate_window_seconds": 1.0}
    await sim.post("/_sandbox/config", json=config)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(seconds)

    calls = Calls()
    robo = client(http, simulator_url, calls, sleep=sleep, backoff=(0.2,))
    for _ in range(2):  # two refusals use up the window (they count, as documented)
        refused = await robo.register_credit_card(reg(token, billing_code="NOBODY"))
        assert refused.error is not None and refused.error.code == "3401"
    result = await robo.register_credit_card(reg(token))
    assert result.outcome == Outcome.SUCCESS, result
    assert result.attempts == 2 and slept == [1.0], "Retry-After: 1 honoured, once"
    assert [c.http_status for c in calls[-2:]] == [429, 200]
    assert calls[-2].outcome == Outcome.UNAVAILABLE and calls[-2].error_code == "rate_limited"
    assert await card_on(sim, "B-001", 1) is not None


async def test_429_backoff_is_bounded_and_the_token_survives(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post(
        "/_sandbox/config",
        json={"billing_robo_rate_limit": 0, "billing_robo_rate_window_seconds": 0.5},
    )
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    calls = Calls()
    robo = client(http, simulator_url, calls, sleep=sleep, max_attempts=3)
    result = await robo.register_credit_card(reg(token))
    assert result.outcome == Outcome.UNAVAILABLE and result.error is not None
    assert result.error.stable_code == "rate_limited" and result.error.http_status == 429
    assert result.attempts == 3 and len(slept) == 2 and len(calls) == 3
    assert all(c.http_status == 429 for c in calls)

    # Retry-After beyond what we may wait: no waiting at all.
    await sim.post("/_sandbox/config", json={"billing_robo_rate_window_seconds": 300})
    slept.clear()
    long = await robo.register_credit_card(reg(token))
    assert long.error is not None and long.error.code == "rate_limited"
    assert long.attempts == 1 and slept == []


async def test_token_is_not_consumed_by_a_429(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    token = await make_token(sim, three_ds=ZERO_3DS)
    await sim.post(
        "/_sandbox/config",
        json={"billing_robo_rate_limit": 0, "billing_robo_rate_window_seconds": 300},
    )
    robo = client(http, simulator_url)
    limited = await robo.register_credit_card(reg(token))
    assert limited.error is not None and limited.error.code == "rate_limited"
    await sim.post("/_sandbox/config", json={"billing_robo_rate_limit": 300})
    ok = await robo.register_credit_card(reg(token))
    assert ok.outcome == Outcome.SUCCESS, ok


async def test_lost_answers_are_unknown_never_success(
    sim: httpx.AsyncClient, simulator_url: str, http: httpx.AsyncClient
) -> None:
    await payer(sim)
    await sim.post("/_sandbox/config", json={"hang_seconds": 3})
    token = await make_token(sim, card=cards.CARD_TIMEOUT, three_ds=ZERO_3DS)
    calls = Calls()
    robo = client(http, simulator_url, calls, deadline_seconds=1.0)
    hung = await robo.register_credit_card(reg(token))
    assert hung.outcome == Outcome.UNKNOWN and hung.error is not None
    assert hung.error.code == "timeout" and hung.attempts == 1
    # Right not to call it failed: billing robo did register the card.
    assert await card_on(sim, "B-001", 1) is not None

    for fault, code in (("garbage_after_charge", "bad_response"), ("http_500", "http_error")):
        await sim.post("/_sandbox/faults", json={fault: 1.0})
        fresh = await make_token(sim, three_ds=ZERO_3DS)
        result = await robo.register_credit_card(reg(fresh, payment_method_number=2))
        assert result.outcome == Outcome.UNKNOWN and result.error is not None
        assert result.error.code == code
        await sim.post("/_sandbox/faults", json={fault: 0.0})
    assert len(calls) == 3 and all(c.outcome == Outcome.UNKNOWN for c in calls)
