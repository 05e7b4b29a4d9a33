"""Issue 17 "Expose what a merchant needs": md/pt at token creation, merchant metadata (free
data), installments on checkout sessions and the ops charges search, against the simulator
process over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.sandbox import cards
from app.sandbox.testing import future_expiry, make_token
from tests.integration.test_checkout import SESSION, ledger, new_session, three_ds_of
from tests.integration.test_customers import new_card, new_customer
from tests.integration.test_onetouch import CHARGE
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration

TOKEN_URL = "gateway/token/create.aspx"


async def _aid(sim: httpx.AsyncClient) -> str:
    return str((await sim.get("/_sandbox/config")).json()["aid"])


async def test_simulator_refuses_token_create_without_md(sim: httpx.AsyncClient) -> None:
    """seed 000 p.9 and seed 001 p.3: md is 必須 in TokenCreate; pt only with md=61."""
    form = {
        "aid": await _aid(sim),
        "cn": cards.CARD_OK,
        "ed": future_expiry(),
        "fn": "TARO",
        "ln": "YAMADA",
        "cvv": "123",
    }
    without = (await sim.post(TOKEN_URL, data=form)).json()
    assert without["result"] == "ER064" and without["message"]
    pt_without_61 = (await sim.post(TOKEN_URL, data={**form, "md": "80", "pt": "3"})).json()
    assert pt_without_61["result"] == "ER065"
    lump = (await sim.post(TOKEN_URL, data={**form, "md": "10"})).json()
    assert lump["result"] == "Success" and lump["tkn"]
    installments = (await sim.post(TOKEN_URL, data={**form, "md": "61", "pt": "12"})).json()
    assert installments["result"] == "Success"


# --- merchant metadata (free data, その他データ) -------------------------------------------------


async def test_session_metadata_is_sent_stored_and_returned(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    meta = {"shop_order": "A-1001", "gift_note": "お誕生日 おめでとう & thanks"}
    cs = await new_session(app, metadata=meta)
    assert cs["metadata"] == meta
    token = await make_token(sim, three_ds=three_ds_of({**SESSION, **cs}))
    paid = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert paid.status_code == 200, paid.text
    payment_id = paid.json()["id"]
    assert "metadata" not in paid.json()  # the shopper's view carries no merchant data
    shown = (await app.ops.get(f"/v1/payments/{payment_id}")).json()
    assert shown["metadata"] == meta
    again = (await app.merchant.get(f"/v1/checkout/sessions/{cs['id']}")).json()
    assert again["metadata"] == meta
    [row] = [r for r in await ledger(sim) if r["cod"] == SESSION["order_id"]]
    assert row["free"] == {**meta, "payment_ref": payment_id}


@pytest.mark.parametrize(
    "metadata",
    [
        {"note": "x"},  # no "_": could be a gateway field (cod, md, acid...)
        {"Shop_order": "x"},
        {"payment_ref": "pay_x"},  # ours
        {"shop_order": "a\nb"},
        {"shop_order": "4444333322221111"},  # card data is never stored
        {"shop_order": "あ" * 110},  # 990 UTF-8 bytes, percent-encoded three times that
        {f"key_{i:03d}": "v" * 20 for i in range(40)},
        {"shop_order": 5},
    ],
)
async def test_metadata_refused_names_the_field(make_app: AppFactory, metadata: Any) -> None:
    app = await make_app()
    r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, "metadata": metadata})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"].startswith("metadata"), r.json()


async def test_onetouch_metadata_and_installments(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await new_customer(app)
    await new_card(app, sim)
    body = {
        **CHARGE,
        "order_id": "otmeta",
        "metadata": {"shop_order": "B-7"},
        "method": "61",
        "installments": 12,
    }
    r = await app.merchant.post("/v1/payments", json=body, headers={"Idempotency-Key": "ot-m"})
    assert r.status_code == 201, r.text
    assert r.json()["metadata"] == {"shop_order": "B-7"}
    [row] = [x for x in await ledger(sim) if x["cod"] == "otmeta"]
    assert (row["md"], row["pt"]) == ("61", "12")
    assert row["free"] == {"shop_order": "B-7", "payment_ref": r.json()["id"]}
    bad = await app.merchant.post(
        "/v1/payments",
        json={**body, "metadata": {"md": "80"}},
        headers={"Idempotency-Key": "ot-m2"},
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"].startswith("metadata")


# --- installments and revolving on a checkout session ----------------------------------------


async def test_session_offers_payment_methods(make_app: AppFactory) -> None:
    app = await make_app()
    plain = await new_session(app)
    assert plain["payment_methods"] == ["10"] and plain["installment_counts"] == []
    offered = await new_session(
        app, payment_methods=["10", "61", "80"], installment_counts=[12, 3, 6]
    )
    assert offered["payment_methods"] == ["10", "61", "80"]
    assert offered["installment_counts"] == [3, 6, 12]
    patches: list[dict[str, Any]] = [
        {"payment_methods": ["61"]},  # no counts
        {"installment_counts": [3]},  # counts without 61
        {"payment_methods": ["61"], "installment_counts": [4]},  # not a seed count
        {"payment_methods": ["99"]},
        {"payment_methods": []},
    ]
    for patch in patches:
        r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, **patch})
        assert r.status_code == 422, (patch, r.text)


async def test_saved_card_pay_sends_the_chosen_installments(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await new_customer(app)
    await new_card(app, sim)
    cs = await new_session(
        app,
        order_id="inst1",
        customer_id="cust001",
        payment_methods=["10", "61"],
        installment_counts=[3, 6],
    )
    url = f"/v1/checkout/sessions/{cs['id']}/pay"
    refused = await app.client.post(url, json={"card_num": 1, "method": "80"})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "method"
    count = await app.client.post(url, json={"card_num": 1, "method": "61", "installments": 5})
    assert count.status_code == 422 and count.json()["errors"][0]["field"] == "installments"
    paid = await app.client.post(url, json={"card_num": 1, "method": "61", "installments": 6})
    assert paid.status_code == 200, paid.text
    [row] = [x for x in await ledger(sim) if x["cod"] == "inst1"]
    assert (row["md"], row["pt"]) == ("61", "6")


async def test_token_pay_keeps_the_tokens_installments(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    """md/pt go with the token (seed 000 p.9); the charge is made on the token's method."""
    app = await make_app()
    cs = await new_session(app, order_id="inst2", payment_methods=["80"])
    token = await make_token(sim, three_ds=three_ds_of({**SESSION, **cs}), md="80")
    url = f"/v1/checkout/sessions/{cs['id']}/pay"
    lump = await app.client.post(url, json={"token": token})  # 10 is not offered here
    assert lump.status_code == 422 and lump.json()["errors"][0]["field"] == "method"
    paid = await app.client.post(url, json={"token": token, "method": "80"})
    assert paid.status_code == 200, paid.text
    [row] = [x for x in await ledger(sim) if x["cod"] == "inst2"]
    assert row["md"] == "80"
