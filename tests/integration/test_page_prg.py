"""Post/redirect/get on the shopper's pages (issue 19, finding 2): a browser's form post
(Sec-Fetch-Mode: navigate) is answered with a redirect to a page of its own, so a reload or
Back never posts the token again; a script's post still gets the page itself."""

from __future__ import annotations

import re

import httpx
import pytest

from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration

# What Chromium sends with a same-origin form post that navigates the page.
NAVIGATE = {
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Site": "same-origin",
    "Sec-Fetch-Dest": "document",
}


async def test_a_browsers_post_goes_to_the_payments_own_page(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=three_ds_of(SESSION))
    r = await app.client.post(
        f"/checkout/{cs['id']}", data={"tkn": token, "lang": "en"}, headers=NAVIGATE
    )
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert re.fullmatch(rf"/checkout/{cs['id']}/payments/[\w-]+\?lang=en", location), location
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    # The result lives there: reload it as often as you like, nothing is posted.
    for _ in range(2):
        page = await app.client.get(location)
        assert page.status_code == 200 and 'data-status="failed"' in page.text
        assert f'href="/checkout/{cs["id"]}?lang=en"' in page.text, "offers another try"
    attempts = (await app.merchant.get(f"/v1/checkout/sessions/{cs['id']}")).json()
    assert attempts["status"] == "open"

    good = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": good}, headers=NAVIGATE)
    assert r.status_code == 303
    paid = await app.client.get(r.headers["location"])
    assert paid.status_code == 200 and 'data-status="succeeded"' in paid.text
    assert "https://shop.example/thanks" in paid.text
    # The declined payment's page still says what happened to it (a bookmark of it).
    declined = await app.client.get(location)
    assert 'data-status="failed"' in declined.text


async def test_a_payments_page_belongs_to_its_session(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs, other = await new_session(app), await new_session(app, order_id="order101")
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token}, headers=NAVIGATE)
    payment_path = r.headers["location"].split("?")[0]
    assert (await app.client.get(payment_path)).status_code == 200
    stolen = payment_path.replace(cs["id"], other["id"])
    for url in (stolen, f"/checkout/{cs['id']}/payments/pay_nope", "/checkout/cs_nope/payments/x"):
        page = await app.client.get(url)
        assert page.status_code == 404 and "text/html" in page.headers["content-type"], url


async def test_a_refused_browser_post_goes_back_to_the_form_saying_why(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    # Revolving is not offered by this session: refused before anything is sent.
    form = {"tkn": token, "pay_option": "80", "lang": "ja"}
    r = await app.client.post(f"/checkout/{cs['id']}", data=form, headers=NAVIGATE)
    assert r.status_code == 303, r.text
    assert (
        r.headers["location"] == f"/checkout/{cs['id']}?lang=ja&problem=payment_method_not_offered"
    )
    page = await app.client.get(r.headers["location"])
    assert page.status_code == 200 and 'id="cn"' in page.text
    alert = re.search(r'<div id="form-alert"[^>]*>([^<]*)</div>', page.text)
    assert alert and alert.group(1) == "このお支払い方法はご利用いただけません。"
    # A script's post still gets its answer in place.
    r = await app.client.post(f"/checkout/{cs['id']}", data=form)
    assert r.status_code == 422 and "text/html" in r.headers["content-type"]


async def test_a_paid_sessions_post_goes_to_its_receipt(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    first = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token}, headers=NAVIGATE)
    again = await app.client.post(f"/checkout/{cs['id']}", data={"tkn": token}, headers=NAVIGATE)
    assert first.status_code == again.status_code == 303
    # The session's page shows the receipt (its reason, "already paid", needs no words).
    assert again.headers["location"].startswith(f"/checkout/{cs['id']}?lang=ja&problem=")
    receipt = await app.client.get(again.headers["location"])
    assert receipt.status_code == 200 and 'data-status="succeeded"' in receipt.text


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("ER584", "トークン"),  # the gateway's code: its own message
        ("ZZ99", "ZZ99"),  # a code the gateway's table lacks: its generic words, with the code
        ("10121999", "10121999"),  # an all-digit code (SBPS's shape) is the gateway's too
        ("too_many_failures", "しばらく"),
        ("some_new_code", "ご請求は発生していません"),
        ("<script>", ""),
        ("a" * 41, ""),
    ],
)
async def test_the_forms_reason_comes_only_from_known_words(
    make_app: AppFactory, problem: str, expected: str
) -> None:
    app = await make_app()
    cs = await new_session(app)
    page = await app.client.get(f"/checkout/{cs['id']}", params={"problem": problem})
    alert = re.search(r'<div id="form-alert"[^>]*>([^<]*)</div>', page.text)
    assert alert is not None
    assert (expected in alert.group(1)) if expected else alert.group(1) == ""
    assert "<script>" not in page.text.split('id="form-alert"')[1][:200]
