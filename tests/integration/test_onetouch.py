"""One-touch charges (POST /v1/payments) and the checkout page's stored-card paths, against the
simulator process: idempotency, races, bad input, the combined path and card-registration
pages."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers.models import Card, Customer
from app.gateway.audit import GatewayCallLog
from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_customers import (
    EMAIL,
    ZERO_3DS,
    carduser,
    new_card,
    new_customer,
    sim_user,
)
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

CHARGE = {"customer_id": "cust001", "card_num": 1, "amount": 1200, "tax": 120, "job": "CAPTURE"}


async def charged(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sim.get("/_sandbox/ledger")).json()
    return [r for r in rows if r["status"] in ("authorized", "captured")]


async def ready(app: RunningApp, sim: httpx.AsyncClient) -> None:
    await new_customer(app)
    await new_card(app, sim)


async def test_onetouch_charge_and_idempotency(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await ready(app, sim)
    missing = await app.merchant.post("/v1/payments", json=CHARGE)
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "Idempotency-Key"

    headers = {"Idempotency-Key": "ot-1"}
    first = await app.merchant.post("/v1/payments", json=CHARGE, headers=headers)
    assert first.status_code == 201, first.text
    payment = first.json()
    assert payment["kind"] == "onetouch" and payment["status"] == "captured"
    assert payment["customer_id"] == "cust001" and payment["card_num"] == 1
    assert payment["total"] == 1320 and payment["gid"]

    replay = await app.merchant.post("/v1/payments", json=CHARGE, headers=headers)
    assert replay.status_code == 201 and replay.json()["id"] == payment["id"]
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = await app.merchant.post(
        "/v1/payments", json={**CHARGE, "amount": 9999}, headers=headers
    )
    assert other.status_code == 422
    assert [r["gid"] for r in await charged(sim)] == [payment["gid"]]

    detail = (await app.ops.get(f"/v1/payments/{payment['id']}")).json()
    assert [c["operation"] for c in detail["gateway_calls"]] == ["charge_onetouch"]
    key = (await sim_user(sim, "cust001") or {})["key"]
    assert key and key not in str(detail), "the customer key is masked in the audit trail"
    assert (await app.ops.get("/v1/payments", params={"customer_id": "cust001"})).json()["data"]


async def test_twenty_parallel_requests_one_charge(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await ready(app, sim)
    headers = {"Idempotency-Key": "ot-race"}
    results = await asyncio.gather(
        *[app.merchant.post("/v1/payments", json=CHARGE, headers=headers) for _ in range(20)]
    )
    codes = [r.status_code for r in results]
    assert set(codes) <= {201, 409}, codes
    ids = {r.json()["id"] for r in results if r.status_code == 201}
    assert len(ids) == 1
    assert len(await charged(sim)) == 1
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 1


async def test_onetouch_bad_input_and_declines(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await ready(app, sim)
    await new_customer(app, uid="other1")
    await new_card(app, sim, uid="other1")
    await new_card(app, sim, uid="other1", card=cards.CARD_DECLINE_G55)

    async def post(key: str, **patch: Any) -> httpx.Response:
        body = {k: v for k, v in {**CHARGE, **patch}.items() if v is not None}
        return await app.merchant.post("/v1/payments", json=body, headers={"Idempotency-Key": key})

    cases: list[tuple[dict[str, Any], str]] = [
        ({"card_num": 2}, "card_num"),  # other1 has a card 2, cust001 does not
        ({"card_num": 7}, "card_num"),
        ({"card_num": 10}, "card_num"),  # num is one digit (seed 000 p.12)
        ({"customer_id": "nobody1"}, "customer_id"),
        ({"customer_id": "bad-uid"}, "customer_id"),
        ({"amount": None}, "body"),
        ({"amount": 100_000_000}, "amount"),
        ({"item_code": "ITEM001"}, "body"),
        ({"method": "61"}, "body"),
        ({"method": "10", "installments": 3}, "body"),
        ({"installments": 4, "method": "61"}, "installments"),
        ({"order_id": "a,b"}, "order_id"),
        ({"phone": "03-1234"}, "phone"),
    ]
    for i, (patch, field) in enumerate(cases):
        r = await post(f"bad-{i}", **patch)
        assert r.status_code == 422, (patch, r.text)
        assert field in {e["field"] for e in r.json()["errors"]}, (patch, r.json())
    assert await charged(sim) == []

    declined = await post("g55", customer_id="other1", card_num=2)
    assert declined.status_code == 402 and declined.json()["gateway_code"] == "G55"
    assert declined.json()["payment"]["status"] == "failed"
    installments = await post("md61", method="61", installments=3)
    assert installments.status_code == 201, installments.text
    product = await post("item", amount=None, tax=None, item_code="ITEM002", job="AUTH")
    assert product.status_code == 422 and "item_code" in product.text, product.text
    product = await post("item", amount=None, tax=None, item_code="ITEM002")
    assert product.status_code == 201, product.text
    assert product.json()["total"] == 2980 + 298 + 500

    # Deleted at the gateway behind our back: a clear refusal, nothing charged.
    key = (await sim_user(sim, "cust001") or {})["key"]
    await carduser(sim, cmd="5", uid="cust001", key=key, num="1")
    gone = await post("gone")
    assert gone.status_code == 422 and gone.json()["gateway_code"] == "ER149"
    assert gone.json()["payment"]["status"] == "failed"


async def test_timeout_is_unknown_and_never_retried(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app(gateway_read_timeout=0.5)
    await new_customer(app)
    await new_card(app, sim, card=cards.CARD_TIMEOUT)
    await sim.post("/_sandbox/config", json={"hang_seconds": 2})
    r = await app.merchant.post("/v1/payments", json=CHARGE, headers={"Idempotency-Key": "t-1"})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "unknown"
    again = await app.merchant.post("/v1/payments", json=CHARGE, headers={"Idempotency-Key": "t-1"})
    assert again.json()["id"] == r.json()["id"]
    assert len(await charged(sim)) == 1, "charged once at the gateway, never retried"


# --- the checkout page's stored-card paths -------------------------------------------------

SESSION = {
    "amount": 1000,
    "tax": 100,
    "shipping": 0,
    "job": "AUTH",
    "email": EMAIL,
    "customer_id": "cust001",
    "success_url": "https://shop.example/thanks",
}
PAY_3DS = {"am": "1000", "tx": "100", "sf": "0", "em": EMAIL}


async def new_session(app: RunningApp, **overrides: Any) -> dict[str, Any]:
    r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, **overrides})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_combined_path_new_customer_stores_masked_card(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = await new_session(app, save_card=True)
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert '"am": "1000"' in page.text, "a new customer pays and registers in one call"
    token = await make_token(sim, three_ds=PAY_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [(c["num"], c["masked_number"][-4:]) for c in listed] == [(1, "1111")]
    got = (await app.merchant.get("/v1/customers/cust001")).json()
    assert [e["type"] for e in got["events"]] == ["customer_created", "card_registered"]
    # Our key is the gateway's: a one-touch charge on the stored card works.
    ot = await app.merchant.post("/v1/payments", json=CHARGE, headers={"Idempotency-Key": "k"})
    assert ot.status_code == 201, ot.text


async def test_combined_path_existing_customer_registers_then_charges_once(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await ready(app, sim)
    cs = await new_session(app, save_card=True)
    page = await app.client.get(f"/checkout/{cs['id']}")
    # The new card is registered first, so 3-D Secure runs as a card registration.
    assert '"am": "0"' in page.text and "save-card-note" in page.text
    assert "\u2022\u2022\u2022\u2022 1111" in page.text, "the saved card is offered"
    token = await make_token(sim, card=cards.CARD_SLOW, three_ds=ZERO_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authorized" and r.json()["card_num"] == 2
    assert len(await charged(sim)) == 1
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1, 2] and listed[1]["masked_number"].endswith("0705")
    gw = await sim_user(sim, "cust001")
    assert gw is not None and [c["num"] for c in gw["cards"]] == [1, 2]


async def test_combined_path_uid_known_only_at_the_gateway(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    assert (await carduser(sim, cmd="0", uid="cust001", em=EMAIL))[0] == "1"
    # Without the page (a JSON frontend that skipped it): the combined call answers ER652,
    # nothing is charged, and the user is imported so the next attempt registers first.
    cs = await new_session(app, save_card=True)
    token = await make_token(sim, three_ds=PAY_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 409 and r.json()["gateway_code"] == "ER652"
    assert await charged(sim) == []
    async with sessions() as session:
        assert (await session.get(Customer, "cust001")) is not None
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert '"am": "0"' in page.text
    token = await make_token(sim, three_ds=ZERO_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    assert len(await charged(sim)) == 1

    # With the page: it looks the uid up first, so the first attempt already succeeds.
    assert (await carduser(sim, cmd="0", uid="cust002", pn="0311112222"))[0] == "1"
    cs2 = await new_session(app, save_card=True, customer_id="cust002", order_id="o2")
    page = await app.client.get(f"/checkout/{cs2['id']}")
    assert '"am": "0"' in page.text
    token = await make_token(sim, three_ds=ZERO_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs2['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    async with sessions() as session:
        card = (
            await session.execute(select(Card).where(Card.customer_uid == "cust002"))
        ).scalar_one()
    assert card.num == 1 and card.masked_number and card.masked_number.endswith("1111")


async def test_registration_failure_charges_nothing(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await ready(app, sim)
    cs = await new_session(app, save_card=True)
    # 3-D Secure run with the payment's amounts does not authorize the registration.
    token = await make_token(sim, three_ds=PAY_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 402 and r.json()["gateway_code"] == "ER901"
    assert r.json()["payment"]["status"] == "failed"
    assert await charged(sim) == []
    ok = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"card_num": 1})
    assert ok.status_code == 200 and ok.json()["card_num"] == 1


async def test_card_registration_page(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    no_contact = await app.merchant.post("/v1/customers/newbie1/card-sessions", json={})
    assert no_contact.status_code == 422 and no_contact.json()["errors"][0]["field"] == "email"
    r = await app.merchant.post(
        "/v1/customers/newbie1/card-sessions",
        json={"email": EMAIL, "success_url": "https://shop.example/cards"},
    )
    assert r.status_code == 201, r.text
    cs = r.json()
    assert cs["kind"] == "card_registration" and cs["total"] == 0
    page = await app.client.get(cs["url"])
    assert page.status_code == 200 and '"am": "0"' in page.text
    for element in ('id="cn"', 'id="tkn"', 'id="mainform"', 'id="purchase"', "EMV3DS_INPUT_FORM"):
        assert element in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    pay = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "abcdefgh12"}
    )
    assert pay.status_code == 422 and pay.json()["code"] == "not_a_payment"

    bad = await make_token(sim, three_ds=PAY_3DS)
    failed = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": bad})
    assert failed.status_code == 402 and 'data-status="failed"' in failed.text
    token = await make_token(sim, three_ds=ZERO_3DS)
    done = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token})
    assert done.status_code == 200 and 'data-status="succeeded"' in done.text
    assert "https://shop.example/cards" in done.text
    again = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token})
    assert 'data-status="succeeded"' in again.text, "a second submit registers nothing"

    session_out = (await app.merchant.get(f"/v1/checkout/sessions/{cs['id']}")).json()
    assert session_out["status"] == "completed" and session_out["card_num"] == 1
    customer = (await app.merchant.get("/v1/customers/newbie1")).json()
    assert customer["email"] == EMAIL and [c["num"] for c in customer["cards"]] == [1]
    assert [e["type"] for e in customer["events"]] == ["customer_created", "card_registered"]
    gw = await sim_user(sim, "newbie1")
    assert gw is not None and len(gw["cards"]) == 1
    assert await charged(sim) == []


async def test_shopper_chooses_whether_to_save_the_card(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    bad = await app.merchant.post(
        "/v1/checkout/sessions", json={**SESSION, "customer_id": None, "offer_save_card": True}
    )
    assert bad.status_code == 422 and "offer_save_card" in bad.text

    # A new customer, box left unticked: paid, nothing saved, no gateway user made.
    cs = await new_session(app, offer_save_card=True)
    assert cs["offer_save_card"] is True and cs["save_card"] is False
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert 'id="save_card"' in page.text and "data-three-ds-save" in page.text
    token = await make_token(sim, three_ds=PAY_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    assert await sim_user(sim, "cust001") is None
    assert (await app.merchant.get("/v1/customers/cust001")).status_code == 404

    # Ticked: the same payment call registers user and card (3-D Secure with the amounts).
    cs = await new_session(app, offer_save_card=True, order_id="osave2")
    token = await make_token(sim, three_ds=PAY_3DS)
    r = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token, "save_card": True}
    )
    assert r.status_code == 200, r.text
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1]

    # Now the gateway knows the customer: ticking the box means "register, then charge", so
    # the page offers registration values for 3-D Secure, and the form post carries the box.
    cs = await new_session(app, offer_save_card=True, order_id="osave3")
    page = await app.client.get(f"/checkout/{cs['id']}")
    assert 'data-three-ds-save=\'{"am": "0"' in page.text.replace("&#34;", '"')
    token = await make_token(sim, card=cards.CARD_SLOW, three_ds=ZERO_3DS)
    r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token, "save_card": "1"})
    assert r.status_code == 200, r.text
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [c["num"] for c in listed] == [1, 2] and listed[1]["masked_number"].endswith("0705")
    assert len(await charged(sim)) == 3


async def test_saved_card_pay_from_checkout_keeps_the_gateway_contact(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    """Seed 000 p.12: em/pn sent with a one-touch charge change the user the gateway holds. A
    checkout's e-mail is the order's: paying with a saved card must not overwrite it; the
    merchant's one-touch call that gives an e-mail explicitly does."""
    app = await make_app()
    await ready(app, sim)
    before = await sim_user(sim, "cust001")
    assert before is not None and before["em"] == EMAIL
    cs = await new_session(app, email="gift@example.com", phone="0312345678")
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"card_num": 1})
    assert r.status_code == 200, r.text
    after = await sim_user(sim, "cust001")
    assert after is not None and (after["em"], after["pn"]) == (before["em"], before["pn"])

    body = {**CHARGE, "email": "new@example.com"}
    ot = await app.merchant.post("/v1/payments", json=body, headers={"Idempotency-Key": "em-1"})
    assert ot.status_code == 201, ot.text
    changed = await sim_user(sim, "cust001")
    assert changed is not None and changed["em"] == "new@example.com"


@pytest.mark.parametrize("second_sf", [False, True])
async def test_registration_answer_in_either_layout(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    second_sf: bool,
) -> None:
    """Seed 000 pp.14, 19 list `sf` twice in the answer (gid..ta,sf,id,ps,uid,key,num);
    GATEWAY.md's line has it once. Either way the card is saved with the right num and key,
    and the key never reaches the audit of the call."""
    app = await make_app()
    config = {"answer_second_sf": second_sf}
    (await sim.post("/_sandbox/config", json=config)).raise_for_status()
    cs = await new_session(app, save_card=True)
    token = await make_token(sim, three_ds=PAY_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    gw = await sim_user(sim, "cust001")
    assert gw is not None
    async with sessions() as session:
        customer = await session.get(Customer, "cust001")
        assert customer is not None and customer.key == gw["key"]
        answers = list(
            (
                await session.execute(
                    select(GatewayCallLog.response_body).where(
                        GatewayCallLog.operation == "charge_token"
                    )
                )
            ).scalars()
        )
    assert answers and all(gw["key"] not in (a or "") for a in answers), answers
    listed = (await app.merchant.get("/v1/customers/cust001/cards")).json()["data"]
    assert [(c["num"], c["masked_number"][-4:]) for c in listed] == [(1, "1111")]
    ot = await app.merchant.post("/v1/payments", json=CHARGE, headers={"Idempotency-Key": "k"})
    assert ot.status_code == 201, ot.text
