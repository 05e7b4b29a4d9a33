"""The billing-robo card page in a real Chromium: the payer enters a card, passes a 3-D Secure
challenge run with am=tx=sf=0 and the payer's registered e-mail and phone (digits only), and
the server registers it with credit_card_token; an expired token gives a readable error."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import parse_qs

from playwright.async_api import Page, Request, Route, expect

from app.sandbox import cards
from tests.e2e.conftest import ARTIFACTS, Server
from tests.e2e.test_checkout_page import fill_card, ledger, record_posts

EMAIL = "keiri@example.co.jp"
TEL = "0312345678"


async def new_payer(server: Server) -> str:
    code = "e2e-" + uuid.uuid4().hex[:10]
    body = {"billing_code": code, "email": EMAIL, "tel": TEL, "payment_methods": [{"number": 1}]}
    r = await server.sim.post("/_sandbox/billing/payers", json=body)
    assert r.status_code == 200, r.text
    return code


async def new_page(server: Server, code: str) -> dict[str, Any]:
    r = await server.merchant.post(
        "/v1/billing/card-sessions",
        json={
            "billing_code": code,
            "billing_payment_method_number": 1,
            "email": EMAIL,
            "tel": "03-1234-5678",  # as a person types it: the page uses digits only
            "success_url": f"{server.url}/healthz?registered=1",
        },
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def card_on(server: Server, code: str) -> Any:
    data = (await server.sim.get(f"/_sandbox/billing/payers/{code}")).json()
    return data["payment_methods"][0]["card"]


def record_3ds(page: Page) -> list[dict[str, list[str]]]:
    seen: list[dict[str, list[str]]] = []

    def on_request(req: Request) -> None:
        if req.method == "POST" and "3ds/authenticate" in req.url:
            seen.append(parse_qs(req.post_data or ""))

    page.on("request", on_request)
    return seen


async def test_register_a_card_on_a_payer_with_3ds_challenge(server: Server, page: Page) -> None:
    code = await new_payer(server)
    cs = await new_page(server, code)
    charges_before = len(await ledger(server))
    await page.goto(cs["url"])
    await expect(page.locator("#billing-code")).to_have_text(code)
    await page.screenshot(path=str(ARTIFACTS / "billing-card-page.png"), full_page=True)
    posts = record_posts(page, f"/checkout/{cs['id']}")
    three_ds = record_3ds(page)
    await fill_card(page, cards.CARD_3DS_CHALLENGE)
    await page.click("#purchase")
    await expect(page.locator("#rpemvtds_code")).to_be_visible(timeout=10000)
    await page.fill("#rpemvtds_code", "1234")
    await page.click("#rpemvtds_submit")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    await page.screenshot(path=str(ARTIFACTS / "billing-card-done.png"), full_page=True)

    assert len(three_ds) == 1
    sent = {k: v[0] for k, v in three_ds[0].items()}
    assert (sent["am"], sent["tx"], sent["sf"]) == ("0", "0", "0")
    assert sent["em"] == EMAIL and sent["pn"] == TEL, "the payer's values, no hyphens"
    assert len(posts) == 1 and "tkn=" in posts[0] and cards.CARD_3DS_CHALLENGE not in posts[0]
    card = await card_on(server, code)
    assert card is not None and card["cn"].endswith("0317")
    state = (await server.merchant.get(f"/v1/billing/card-sessions/{cs['id']}")).json()
    assert state["status"] == "completed" and state["registration"]["status"] == "succeeded"
    assert len(await ledger(server)) == charges_before, "registering a card charges nothing"


async def test_expired_token_is_a_readable_error_on_the_page(server: Server, page: Page) -> None:
    code = await new_payer(server)
    cs = await new_page(server, code)
    await page.goto(f"{cs['url']}?lang=en")

    async def expire_then_post(route: Route) -> None:
        # The token was made seconds ago; 16 simulated minutes later it has expired (ER585).
        await server.sim.post("/_sandbox/clock", json={"advance_seconds": 16 * 60})
        await route.continue_()

    await page.route(f"**/checkout/{cs['id']}", expire_then_post)
    try:
        await fill_card(page, cards.CARD_OK)
        await page.click("#purchase")
        failed = page.locator('#result[data-status="failed"]')
        await expect(failed).to_be_visible(timeout=15000)
    finally:
        await server.sim.post("/_sandbox/clock", json={"advance_seconds": -16 * 60})
    await expect(failed).to_contain_text("expired")
    await page.screenshot(path=str(ARTIFACTS / "billing-card-expired.png"), full_page=True)
    assert await card_on(server, code) is None
    # The page offers another try, which works with a fresh token.
    await page.unroute(f"**/checkout/{cs['id']}")
    await page.click('a[data-link="retry"]')
    await fill_card(page, cards.CARD_OK)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert (await card_on(server, code))["cn"].endswith("1111")
