"""cod (店舗オーダー番号) and product-registered payments (商品登録あり) against the simulator
process over HTTP (issue 17, bugs 2 and 3).

cod is 半角英数または日本語, 50 bytes (seed 000): the API refuses other order ids before any
call, the default cod (no order id) is alphanumeric, and the simulator refuses what the seed
refuses (ER054), so a client that sent `pay_...` would fail here. A product payment (iid) is
sent without jb and without amounts (seed 000 pp.13, 18): the gateway's price is recorded, its
issued content ID/password (id/ps) is stored and shown to the merchant and the shopper, and a
job the gateway cannot be told is refused.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, ledger, new_session, three_ds_of
from tests.integration.test_kickback_mode import kickbacks_to, settles
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration

PRODUCT = {"amount": 5000, "tax": 0, "shipping": 0, "item_code": "ITEM002", "job": "CAPTURE"}
PRODUCT_3DS = {"iid": "ITEM002", "em": str(SESSION["email"])}


@pytest.mark.parametrize(
    ("order_id", "why"),
    [
        ("order-42", "'-'"),
        ("order_42", "'_'"),
        ("order 42", "' '"),
        ("ﾁｭｳﾓﾝ42", "'ﾁ'"),  # half-width katakana is not 日本語 here
        ("注文#1", "'#'"),
        ("注文番号" * 4 + "abc", "not 51"),  # 16 kanji = 48 bytes in UTF-8, + 3 = 51
        ("x" * 51, "not 51"),
    ],
)
async def test_order_ids_outside_the_seeds_cod_are_refused_before_any_call(
    make_app: AppFactory, sim: httpx.AsyncClient, order_id: str, why: str
) -> None:
    app = await make_app()
    r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, "order_id": order_id})
    assert r.status_code == 422, r.text
    [error] = [e for e in r.json()["errors"] if e["field"] == "order_id"]
    assert why in error["message"], error
    onetouch = {"customer_id": "cust001", "card_num": 1, "amount": 100, "order_id": order_id}
    r = await app.merchant.post("/v1/payments", json=onetouch, headers={"Idempotency-Key": "k1"})
    assert r.status_code == 422 and "order_id" in {e["field"] for e in r.json()["errors"]}
    assert await ledger(sim) == []


@pytest.mark.parametrize("order_id", ["ORDER42", "注文番号１２３", "ご注文" * 5 + "ab", None])
async def test_the_cod_sent_is_the_order_id_or_an_alphanumeric_default(
    make_app: AppFactory, sim: httpx.AsyncClient, order_id: str | None
) -> None:
    app = await make_app()
    body = {**SESSION, "order_id": order_id}
    cs = await new_session(app, order_id=order_id)
    token = await make_token(sim, three_ds=three_ds_of(body))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    pid = r.json()["id"]
    [row] = await ledger(sim)
    expected = order_id or pid.replace("_", "")
    assert row["cod"] == expected
    assert re.fullmatch(r"[A-Za-z0-9]{35}", row["cod"]) if order_id is None else True
    shown = (await app.ops.get(f"/v1/payments/{pid}")).json()
    assert (shown["cod"], shown["order_id"]) == (expected, order_id)


async def test_a_product_payment_records_the_gateways_price_and_content(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app, **PRODUCT)
    token = await make_token(sim, three_ds=PRODUCT_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    shopper = r.json()
    # The simulator refuses jb with iid (ER051): a success shows none was sent.
    [row] = await ledger(sim)
    assert (row["iid"], row["jb"], row["ta"]) == ("ITEM002", "CAPTURE", 3778)
    content = {"id": "rpitem002", "password": "pw2980b"}
    assert shopper["status"] == "captured" and shopper["content"] == content
    merchant = (await app.ops.get(f"/v1/payments/{shopper['id']}")).json()
    assert (merchant["amount"], merchant["tax"], merchant["shipping"]) == (2980, 298, 500)
    assert merchant["job"] == "CAPTURE" and merchant["content"] == content
    # The shopper's result page (the answer to the page's form post), in Japanese.
    cs = await new_session(app, **PRODUCT)
    token = await make_token(sim, three_ds=PRODUCT_3DS)
    page = await app.client.post(f"/checkout/{cs['id']}?lang=ja", data={"tkn": token})
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-content="id">rpitem002<' in html and 'data-content="password">pw2980b<' in html
    assert "コンテンツパスワード" in html
    assert "3,778" in html and "5,000" not in html  # the gateway's total, not the merchant's
    ordinary = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    page = await app.client.post(f"/checkout/{ordinary['id']}?lang=ja", data={"tkn": token})
    assert page.status_code == 200 and "コンテンツ" not in page.text


@pytest.mark.parametrize(
    "path_body",
    [
        ("/v1/checkout/sessions", {**SESSION, **PRODUCT, "job": "AUTH"}),
        (
            "/v1/payments",
            {"customer_id": "cust001", "card_num": 1, "item_code": "ITEM001", "job": "AUTH"},
        ),
        ("/v1/checkout/sessions", {**SESSION, **PRODUCT, "item_code": "ITEM-002"}),
    ],
)
async def test_what_a_product_payment_cannot_do_is_refused(
    make_app: AppFactory, sim: httpx.AsyncClient, path_body: tuple[str, dict[str, Any]]
) -> None:
    app = await make_app()
    path, body = path_body
    r = await app.merchant.post(path, json=body, headers={"Idempotency-Key": "p1"})
    assert r.status_code == 422, r.text
    [error] = [e for e in r.json()["errors"] if e["field"] == "item_code"]
    assert "job" in error["message"] or "letters or digits" in error["message"], error
    assert await ledger(sim) == []


async def test_a_product_payment_in_kickback_mode_gets_its_content_from_the_kickback(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(gateway_result_mode=0)
    await kickbacks_to(app, sim)
    cs = await new_session(app, **PRODUCT)
    token = await make_token(sim, three_ds=PRODUCT_3DS)
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 202 and r.json()["content"] is None, r.text
    p = await settles(sessions, r.json()["id"])
    assert p.status == "captured", p.status
    assert (p.amount, p.tax, p.shipping) == (2980, 298, 500)
    assert (p.content_id, p.content_password) == ("rpitem002", "pw2980b")
