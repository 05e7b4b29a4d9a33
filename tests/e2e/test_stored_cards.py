"""Stored cards in a real Chromium: pay with a saved card in one click, add a card through the
card-registration page, and a deleted card disappears from the page."""

from __future__ import annotations

import uuid
from typing import Any

from playwright.async_api import Page, expect

from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.e2e.conftest import ARTIFACTS, Server, create_session
from tests.e2e.test_checkout_page import fill_card, ledger, payment_of, record_posts

EMAIL = "hanako@example.com"


def new_uid() -> str:
    return "e2e" + uuid.uuid4().hex[:12]


async def customer_with_card(server: Server, uid: str) -> dict[str, Any]:
    r = await server.merchant.post("/v1/customers", json={"uid": uid, "email": EMAIL})
    assert r.status_code == 201, r.text
    token = await make_token(server.sim, three_ds={"am": "0", "tx": "0", "sf": "0", "em": EMAIL})
    r = await server.merchant.post(f"/v1/customers/{uid}/cards", json={"token": token})
    assert r.status_code == 201, r.text
    card: dict[str, Any] = r.json()
    return card


async def test_pay_with_saved_card_in_one_click(server: Server, page: Page) -> None:
    uid = new_uid()
    card = await customer_with_card(server, uid)
    cs = await create_session(server, customer_id=uid, order_id=f"ot{uid}")
    await page.goto(cs["url"])
    saved = page.locator("#card-choices")
    # Shown as four bullets and the last four (the stored number stays the gateway's).
    assert card["masked_number"] == "************1111"
    await expect(saved).to_contain_text("\u2022\u2022\u2022\u2022 1111")
    await expect(page.locator("#new-card")).to_be_hidden()
    await page.screenshot(path=str(ARTIFACTS / "checkout-saved-card.png"), full_page=True)
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert len(posts) == 1 and "card_num=1" in posts[0] and "tkn" not in posts[0]
    p = await payment_of(server, cs["id"])
    assert p is not None and p["status"] == "authorized" and p["card_num"] == 1
    assert [c["operation"] for c in p["gateway_calls"]] == ["charge_onetouch"]
    assert len([r for r in await ledger(server) if r["cod"] == f"ot{uid}"]) == 1


async def test_add_card_through_registration_page(server: Server, page: Page) -> None:
    uid = new_uid()
    r = await server.merchant.post(
        f"/v1/customers/{uid}/card-sessions",
        json={"email": EMAIL, "success_url": f"{server.url}/healthz?saved=1"},
    )
    assert r.status_code == 201, r.text
    cs = r.json()
    charges_before = len(await ledger(server))
    await page.goto(cs["url"])
    await expect(page.locator("#customer-id")).to_have_text(uid)
    await page.screenshot(path=str(ARTIFACTS / "card-registration.png"), full_page=True)
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await fill_card(page, cards.CARD_3DS_CHALLENGE)
    await page.click("#purchase")
    # Card registration authenticates too (3-D Secure with am=tx=sf=0).
    await expect(page.locator("#rpemvtds_code")).to_be_visible(timeout=10000)
    await page.fill("#rpemvtds_code", "1234")
    await page.click("#rpemvtds_submit")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    await expect(page.locator("#result")).to_contain_text("\u2022\u2022\u2022\u2022 0317")
    await page.screenshot(path=str(ARTIFACTS / "card-registration-done.png"), full_page=True)
    assert len(posts) == 1 and "tkn=" in posts[0] and cards.CARD_3DS_CHALLENGE not in posts[0]
    listed = (await server.merchant.get(f"/v1/customers/{uid}/cards")).json()["data"]
    assert [(c["num"], c["masked_number"][-4:]) for c in listed] == [(1, "0317")]
    assert len(await ledger(server)) == charges_before, "registering a card charges nothing"


async def test_deleted_card_leaves_the_page(server: Server, page: Page) -> None:
    uid = new_uid()
    await customer_with_card(server, uid)
    token = await make_token(
        server.sim,
        card=cards.CARD_DECLINE_G55,
        three_ds={"am": "0", "tx": "0", "sf": "0", "em": EMAIL},
    )
    second = await server.merchant.post(f"/v1/customers/{uid}/cards", json={"token": token})
    assert second.status_code == 201
    cs = await create_session(server, customer_id=uid)
    await page.goto(cs["url"])
    await expect(page.locator("input[name=card_choice]")).to_have_count(3)  # 2 cards + new
    r = await server.merchant.delete(f"/v1/customers/{uid}/cards/1")
    assert r.status_code == 204
    await page.reload()
    choices = page.locator("#card-choices")
    await expect(page.locator("input[name=card_choice]")).to_have_count(2)
    await expect(choices).to_contain_text("0556")
    await expect(choices).not_to_contain_text("1111")
    # The remaining card (G55 over limit) is declined: a readable error, nothing charged.
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="failed"]')).to_be_visible(timeout=15000)
    p = await payment_of(server, cs["id"])
    assert p is not None and p["card_num"] == 2 and p["error_code"] == "G55"


async def test_delete_a_card_with_its_button_on_the_card_page(server: Server, page: Page) -> None:
    uid = new_uid()
    await customer_with_card(server, uid)
    token = await make_token(
        server.sim,
        card=cards.CARD_DECLINE_G55,
        three_ds={"am": "0", "tx": "0", "sf": "0", "em": EMAIL},
    )
    assert (
        await server.merchant.post(f"/v1/customers/{uid}/cards", json={"token": token})
    ).status_code == 201
    r = await server.merchant.post(f"/v1/customers/{uid}/card-sessions", json={"email": EMAIL})
    cs = r.json()
    await page.goto(cs["url"])
    listed = page.locator("#registered-cards li")
    await expect(listed).to_have_count(2)
    await page.screenshot(path=str(ARTIFACTS / "card-page-saved-cards.png"), full_page=True)
    await page.locator('#registered-cards li[data-num="1"] button').click()
    await expect(page.locator("#page-notice")).to_be_visible()
    await expect(listed).to_have_count(1)
    await expect(page.locator("#registered-cards")).to_contain_text("0556")
    await expect(page.locator("#registered-cards")).not_to_contain_text("1111")
    # Deleted at the gateway too (cmd 5), and in our copy with the page as the actor.
    gone = await server.merchant.get(f"/v1/customers/{uid}/cards/1")
    assert gone.status_code == 404, gone.text
    events = (await server.merchant.get(f"/v1/customers/{uid}")).json()["events"]
    assert any(
        e["type"] == "card_deleted" and e["actor"] == f"card-page:{cs['id']}" for e in events
    ), events
    # A reload shows the same list; the delete is not posted again.
    await page.reload()
    await expect(listed).to_have_count(1)


async def test_shopper_ticks_save_this_card_for_a_known_customer(
    server: Server, page: Page
) -> None:
    uid = new_uid()
    await customer_with_card(server, uid)
    cs = await create_session(
        server, customer_id=uid, order_id=f"sv{uid}", email=EMAIL, offer_save_card=True
    )
    await page.goto(cs["url"])
    await page.check('input[name=card_choice][value="new"]')
    await expect(page.locator("#save_card")).to_be_visible()
    await fill_card(page, cards.CARD_SLOW)
    await page.check("#save_card")
    await page.screenshot(path=str(ARTIFACTS / "checkout-save-card-box.png"), full_page=True)
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=20000)
    # The box switched 3-D Secure to registration values: the card was registered on the
    # customer, then charged once, one-touch.
    assert len(posts) == 1 and "save_card=1" in posts[0] and "tkn=" in posts[0]
    listed = (await server.merchant.get(f"/v1/customers/{uid}/cards")).json()["data"]
    assert [c["masked_number"][-4:] for c in listed] == ["1111", "0705"]
    p = await payment_of(server, cs["id"])
    assert p is not None and p["status"] == "authorized" and p["card_num"] == 2
    assert len([r for r in await ledger(server) if r["cod"] == f"sv{uid}"]) == 1
