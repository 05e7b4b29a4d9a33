"""Stored cards with GATEWAY_PROVIDER=sbps, through the same customer-card API and pages as
ROBOT PAYMENT: the app under uvicorn against the SBPS simulator process over HTTP. SBPS keeps
one card per cust_code (MG02-00131-101 save, MG02-00104-101 look-up, MG02-00103-101 delete);
a stored card is charged with ST01-00131-101 without a token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.sandbox.sbps.testing import make_tds_info_token, make_token
from tests.integration.test_sbps_checkout import ledger, new_session
from tests.integration.test_sbps_three_ds import tds_app  # noqa: F401 (a fixture)
from tests.support.fixtures import RunningApp

pytestmark = pytest.mark.integration

UID = "sbpscust01"


async def customer_with_card(app: RunningApp, sim: httpx.AsyncClient) -> dict[str, Any]:
    r = await app.merchant.post("/v1/customers", json={"uid": UID, "email": "taro@example.com"})
    assert r.status_code == 201, r.text
    pair = await make_token(sim)
    card = await app.merchant.post(
        f"/v1/customers/{UID}/cards", json={"token": pair.token, "token_key": pair.token_key}
    )
    assert card.status_code == 201, card.text
    body: dict[str, Any] = card.json()
    return body


async def test_a_card_saved_with_its_token_key_is_read_back_and_listed(
    tds_app: RunningApp,  # noqa: F811
    sbps_sim: httpx.AsyncClient,
) -> None:
    card = await customer_with_card(tds_app, sbps_sim)
    assert card["num"] == 1 and card["masked_number"] and card["masked_number"].endswith("1111")
    [stored] = (await sbps_sim.get("_sandbox/cards")).json()
    assert stored["cust_code"] == UID
    listed = (await tds_app.merchant.get(f"/v1/customers/{UID}/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1]
    # A token without its key: refused by the client, nothing sent, a clear problem.
    pair = await make_token(sbps_sim)
    r = await tds_app.merchant.post(f"/v1/customers/{UID}/cards", json={"token": pair.token})
    assert r.status_code in (409, 422, 502), r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    # Deleted: MG02-00103-101, gone at SBPS too.
    gone = await tds_app.merchant.delete(f"/v1/customers/{UID}/cards/1")
    assert gone.status_code == 204, gone.text
    assert (await sbps_sim.get("_sandbox/cards")).json() == []


async def test_a_stored_card_is_charged_once_by_the_payments_api(
    tds_app: RunningApp,  # noqa: F811
    sbps_sim: httpx.AsyncClient,
) -> None:
    await customer_with_card(tds_app, sbps_sim)
    charge = {"customer_id": UID, "card_num": 1, "amount": 1200, "tax": 120, "job": "AUTH"}
    r = await tds_app.merchant.post(
        "/v1/payments", json=charge, headers={"Idempotency-Key": "sbps-stored-1"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "authorized"
    again = await tds_app.merchant.post(
        "/v1/payments", json=charge, headers={"Idempotency-Key": "sbps-stored-1"}
    )
    assert again.json()["id"] == r.json()["id"]
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True and row["amount"] == 1320 and row["via"] == "stored"


async def test_a_checkout_pays_with_the_saved_card(
    tds_app: RunningApp,  # noqa: F811
    sbps_sim: httpx.AsyncClient,
) -> None:
    await customer_with_card(tds_app, sbps_sim)
    cs = await new_session(tds_app, customer_id=UID)
    page = await tds_app.client.get(f"/checkout/{cs['id']}")
    assert "1111" in page.text  # the saved card is offered
    r = await tds_app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"card_num": 1})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authorized"
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True and row["via"] == "stored"


async def test_checkout_saves_a_new_card_on_a_known_customer_first(
    tds_app: RunningApp,  # noqa: F811
    sbps_sim: httpx.AsyncClient,
) -> None:
    """Register-first (the customer exists): MG02-00131-101 with the token's key, then the
    stored card's charge: one charge, the card kept."""
    r = await tds_app.merchant.post("/v1/customers", json={"uid": UID, "email": "taro@example.com"})
    assert r.status_code == 201, r.text
    cs = await new_session(tds_app, customer_id=UID, save_card=True)
    pair = await make_token(sbps_sim)
    info = await make_tds_info_token(sbps_sim)
    paid = await tds_app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay",
        json={
            "token": pair.token,
            "token_key": pair.token_key,
            "tds_info_token": info.token,
            "tds_info_token_key": info.token_key,
        },
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"] == "authorized" and paid.json()["card_num"] == 1
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True and row["via"] == "stored"
    listed = (await tds_app.merchant.get(f"/v1/customers/{UID}/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1]


async def test_the_card_page_registers_with_the_token_key(
    tds_app: RunningApp,  # noqa: F811
    sbps_sim: httpx.AsyncClient,
) -> None:
    """The card-registration page posts tkn + tkn_key (no 3-D Secure info token: SBPS's card
    save takes none); the card is kept at SBPS and in our copy."""
    r = await tds_app.merchant.post("/v1/customers", json={"uid": UID, "email": "taro@example.com"})
    assert r.status_code == 201, r.text
    page = (await tds_app.merchant.post(f"/v1/customers/{UID}/card-sessions", json={})).json()
    shown = await tds_app.client.get(f"/checkout/{page['id']}")
    assert 'id="tkn_key"' in shown.text and "com_sbps_system_tds2infotoken.js" not in shown.text
    pair = await make_token(sbps_sim)
    posted = await tds_app.client.post(
        f"/checkout/{page['id']}", data={"tkn": pair.token, "tkn_key": pair.token_key}
    )
    assert posted.status_code == 200, posted.text
    [stored] = (await sbps_sim.get("_sandbox/cards")).json()
    assert stored["cust_code"] == UID
    listed = (await tds_app.merchant.get(f"/v1/customers/{UID}/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1]
