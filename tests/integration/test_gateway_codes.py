"""Every code of the seed's error table that no request of ours provokes (seed 000 p.26: ER031,
ER150, ER564, ER565, ER567, ER590, ER651, ER655, ER656, ER998) is produced by the simulator
process (`_sandbox/errors`) and answered by our API with a readable, stable problem: the code,
its status, a message, nothing charged, and the same payment payable once the gateway takes it
(issue 17)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.gateway import codes as errors
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.integration.test_onetouch import CHARGE, charged, ready
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration

TOKEN_CODES = ["ER031", "ER150", "ER564", "ER565", "ER567", "ER998"]
ONETOUCH_CODES = ["ER590", "ER651", "ER655", "ER656", "ER998"]


async def force(sim: httpx.AsyncClient, code: str, endpoint: str) -> None:
    r = await sim.post("/_sandbox/errors", json={"code": code, "endpoint": endpoint})
    assert r.status_code == 201, r.text


def readable(body: dict[str, Any], code: str) -> None:
    """The problem says which gateway code, in our stable words, with a message a person reads."""
    info = errors.lookup(code)
    assert body["gateway_code"] == code, json.dumps(body)
    assert body["code"] == info.stable_code and not info.stable_code.startswith("gateway_"), body
    assert body["detail"] == info.message_en, body


@pytest.mark.parametrize("code", TOKEN_CODES)
async def test_a_token_pay_refused_with_a_seed_code(
    make_app: AppFactory, sim: httpx.AsyncClient, code: str
) -> None:
    app = await make_app()
    cs = await new_session(app)
    await force(sim, code, "gateway_token.aspx")
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == errors.lookup(code).http_status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    readable(r.json(), code)
    assert r.json()["payment"]["status"] == "failed"
    assert await charged(sim) == []
    assert (await sim.get("/_sandbox/errors")).json() == [], "used once"
    # A refusal before the card company charged nothing: the session can still be paid.
    again = await make_token(sim, three_ds=three_ds_of(SESSION))
    ok = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": again})
    assert ok.status_code == 200 and ok.json()["status"] == "authorized", ok.text
    assert len(await charged(sim)) == 1


@pytest.mark.parametrize("code", ONETOUCH_CODES)
async def test_a_saved_card_pay_refused_with_a_seed_code(
    make_app: AppFactory, sim: httpx.AsyncClient, code: str
) -> None:
    app = await make_app()
    await ready(app, sim)
    await force(sim, code, "onetouch.aspx")
    headers = {"Idempotency-Key": f"forced-{code}"}
    r = await app.merchant.post("/v1/payments", json=CHARGE, headers=headers)
    assert r.status_code == errors.lookup(code).http_status, r.text
    readable(r.json(), code)
    assert await charged(sim) == []
    ok = await app.merchant.post(
        "/v1/payments", json=CHARGE, headers={"Idempotency-Key": f"after-{code}"}
    )
    assert ok.status_code == 201 and ok.json()["status"] == "captured", ok.text
    assert len(await charged(sim)) == 1


async def test_the_control_refuses_a_code_not_in_the_table(sim: httpx.AsyncClient) -> None:
    for code in ("G12", "ER123", "OK"):
        r = await sim.post("/_sandbox/errors", json={"code": code})
        assert r.status_code == 422, (code, r.text)
    assert (await sim.get("/_sandbox/errors")).json() == []
