"""The checkout page in a real Chromium against a real uvicorn with the in-process sandbox."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from playwright.async_api import Page, Request, expect

from app.sandbox import cards
from tests.e2e.conftest import ARTIFACTS, Server, create_session


async def ledger(server: Server) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await server.sim.get("/_sandbox/ledger")).json()
    return rows


async def payment_of(server: Server, session_id: str) -> dict[str, Any] | None:
    r = await server.merchant.get(f"/v1/checkout/sessions/{session_id}")
    pid = r.json()["payment_id"]
    if pid is None:
        return None
    detail: dict[str, Any] = (await server.ops.get(f"/v1/payments/{pid}")).json()
    return detail


async def fill_card(page: Page, number: str, *, fn: str = "HANAKO", ln: str = "SATO") -> None:
    await page.fill("#cn", number)
    await page.select_option("#ed_month", "12")
    years = await page.locator("#ed_year option").evaluate_all("os => os.map(o => o.value)")
    await page.select_option("#ed_year", [v for v in years if v][-1])
    await page.fill("#fn", fn)
    await page.fill("#ln", ln)
    await page.fill("#cvv", "123")


def record_posts(page: Page, path: str) -> list[str]:
    bodies: list[str] = []

    def on_request(req: Request) -> None:
        if req.method == "POST" and req.url.endswith(path):
            bodies.append(req.post_data or "")

    page.on("request", on_request)
    return bodies


async def test_custom_mode_success(server: Server, page: Page) -> None:
    cs = await create_session(server)
    await page.goto(cs["url"])
    await expect(page.locator("#total-amount")).to_contain_text("1,580")
    await page.screenshot(path=str(ARTIFACTS / "checkout-custom.png"), full_page=True)
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await fill_card(page, cards.CARD_OK)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    await page.screenshot(path=str(ARTIFACTS / "result-success.png"), full_page=True)
    # Only the token left the page for our server: no card field, cleared or not.
    assert len(posts) == 1
    assert "tkn=" in posts[0] and cards.CARD_OK not in posts[0] and "cvv" not in posts[0]
    p = await payment_of(server, cs["id"])
    assert p is not None and p["status"] == "authorized" and p["gid"]
    assert [r["gid"] for r in await ledger(server) if r["gid"] == p["gid"]] == [p["gid"]]


async def test_card_fields_are_cleared_before_submit(server: Server, page: Page) -> None:
    cs = await create_session(server)
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_OK)
    # Freeze navigation so the form's state at submit time can be read.
    await page.evaluate(
        "() => { HTMLFormElement.prototype.submit = function () { window.__submitted = true; }; }"
    )
    await page.click("#purchase")
    await page.wait_for_function("() => window.__submitted === true", timeout=15000)
    values = await page.evaluate(
        "() => ['cn','ed_month','ed_year','fn','ln','cvv']"
        ".map(id => document.getElementById(id).value)"
    )
    assert values == [""] * 6
    assert await page.input_value("#tkn")


async def test_popup_mode_success(popup_server: Server, page: Page) -> None:
    cs = await create_session(popup_server)
    await page.goto(cs["url"])
    await page.click("#purchase")
    await expect(page.locator("#rpcp_cn")).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "checkout-popup.png"), full_page=True)
    await page.fill("#rpcp_cn", cards.CARD_OK)
    await page.select_option("#rpcp_ed_month", "12")
    years = await page.locator("#rpcp_ed_year option").evaluate_all("os => os.map(o => o.value)")
    await page.select_option("#rpcp_ed_year", [v for v in years if v][-1])
    await page.fill("#rpcp_fn", "TARO")
    await page.fill("#rpcp_ln", "YAMADA")
    if await page.locator("#rpcp_cvv").count():
        await page.fill("#rpcp_cvv", "123")
    await page.click("#rpcp_submit")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    p = await payment_of(popup_server, cs["id"])
    assert p is not None and p["status"] == "authorized"


async def test_decline_shows_readable_error_and_charges_nothing(server: Server, page: Page) -> None:
    cs = await create_session(server, order_id="e2edecline")
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_DECLINE_G12)
    await page.click("#purchase")
    failed = page.locator('#result[data-status="failed"]')
    await expect(failed).to_be_visible(timeout=15000)
    await expect(failed).to_contain_text("カード")
    await page.screenshot(path=str(ARTIFACTS / "result-declined.png"), full_page=True)
    rows = [r for r in await ledger(server) if r["cod"] == "e2edecline"]
    assert rows and all(r["status"] == "declined" for r in rows)


async def test_client_side_checks_stop_bad_input(server: Server, page: Page) -> None:
    cs = await create_session(server)
    await page.goto(cs["url"])
    await fill_card(page, "4444333322221112", fn="TARO1")
    await page.click("#purchase")
    await expect(page.locator("#cn-error")).not_to_be_empty()
    await expect(page.locator("#fn-error")).not_to_be_empty()
    await expect(page.locator("#purchase")).to_be_enabled()
    assert await payment_of(server, cs["id"]) is None
    # The gateway takes Latin letters, "." and "-" in a holder name, no space (ER058).
    await fill_card(page, cards.CARD_OK, ln="DE LA CRUZ")
    await page.click("#purchase")
    await expect(page.locator("#ln-error")).not_to_be_empty()
    await expect(page.locator("#fn-error")).to_be_empty()
    assert await payment_of(server, cs["id"]) is None


async def test_three_ds_challenge_completed(server: Server, page: Page) -> None:
    cs = await create_session(server)
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_3DS_CHALLENGE)
    await page.click("#purchase")
    await expect(page.locator("#rpemvtds_code")).to_be_visible(timeout=10000)
    await page.screenshot(path=str(ARTIFACTS / "three-ds-challenge.png"), full_page=True)
    await page.fill("#rpemvtds_code", "1234")
    await page.click("#rpemvtds_submit")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)


async def test_three_ds_failure(server: Server, page: Page) -> None:
    cs = await create_session(server)
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_3DS_FAIL)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="failed"]')).to_be_visible(timeout=15000)
    p = await payment_of(server, cs["id"])
    assert p is not None and p["status"] == "failed" and p["error_code"] == "ER900"


async def test_double_click_charges_once(server: Server, page: Page) -> None:
    cs = await create_session(server, order_id="e2edouble")
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_OK)
    posts = record_posts(page, f"/checkout/{cs['id']}")
    tokens = record_posts(page, "/gateway/token/create.aspx")
    await page.dblclick("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert len(tokens) == 1 and len(posts) == 1
    rows = [r for r in await ledger(server) if r["cod"] == "e2edouble"]
    assert len(rows) == 1


async def test_demo_shop_newcomer_flow(server: Server, page: Page) -> None:
    """What the README promises: open /, buy, pay with 4444333322221111, see it in the API."""
    await page.goto(server.url + "/")
    await page.screenshot(path=str(ARTIFACTS / "demo-shop.png"), full_page=True)
    # The test-card table comes from the simulator's own card list, grouped for reading.
    await expect(page.locator(".test-cards")).to_contain_text("4444 3333 2222 1111")
    await page.click("form button[type=submit]")
    await page.wait_for_url("**/checkout/cs_*")
    await fill_card(page, "4444333322221111")
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    listed = (
        await server.ops.get("/v1/payments", params={"status": ["captured", "authorized"]})
    ).json()
    assert listed["data"], "the demo payment is visible to ops"
    # The shop heard of it by webhook, signed: its events page lists what it received.
    for _ in range(60):
        await page.goto(server.url + "/demo/events")
        if await page.locator("#demo-events").count():
            text = await page.locator("#demo-events").inner_text()
            if "payment.captured" in text and "checkout.session.completed" in text:
                break
        await page.wait_for_timeout(250)
    await expect(page.locator("#demo-events")).to_contain_text("payment.captured")
    await page.screenshot(path=str(ARTIFACTS / "demo-shop-events.png"), full_page=True)


async def test_english_switch_and_phone_layout(server: Server, page: Page) -> None:
    cs = await create_session(server)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.goto(cs["url"] + "?lang=en")
    await expect(page.locator("#pay-title")).to_be_visible()
    assert await page.evaluate("() => document.documentElement.lang") == "en"
    width = await page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, "no horizontal scrolling on a phone"
    await page.screenshot(path=str(ARTIFACTS / "checkout-phone-en.png"), full_page=True)


async def test_pay_in_installments_through_the_page(server: Server, page: Page) -> None:
    """The shop offers lump sum and installments: the shopper picks 6 installments with the
    keyboard in a labelled select; TokenCreate carries md=61 and pt=6 (seed 000 p.9)."""
    cs = await create_session(
        server, order_id="e2einst", payment_methods=["10", "61"], installment_counts=[3, 6]
    )
    await page.goto(cs["url"] + "?lang=en")
    select = page.get_by_label("Payment method")
    await expect(select).to_have_value("10")
    await expect(page.locator("#pay_option option")).to_have_text(
        ["Lump sum", "3 installments", "6 installments"]
    )
    await fill_card(page, cards.CARD_OK)
    tokens = record_posts(page, "/gateway/token/create.aspx")
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await select.focus()
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")
    await expect(select).to_have_value("61-6")
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert len(tokens) == 1
    sent = parse_qs(tokens[0])
    assert sent["md"] == ["61"] and sent["pt"] == ["6"]
    assert len(posts) == 1 and "pay_option=61-6" in posts[0]
    [row] = [r for r in await ledger(server) if r["cod"] == "e2einst"]
    assert (row["md"], row["pt"]) == ("61", "6")


async def test_japanese_page_offers_revolving_and_sends_md_10_by_default(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2emd10", payment_methods=["10", "80"])
    await page.goto(cs["url"] + "?lang=ja")
    await expect(page.get_by_label("お支払い方法")).to_have_value("10")
    await expect(page.locator("#pay_option option")).to_have_text(["一括払い", "リボ払い"])
    await fill_card(page, cards.CARD_OK)
    tokens = record_posts(page, "/gateway/token/create.aspx")
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert len(tokens) == 1
    sent = parse_qs(tokens[0])
    assert sent["md"] == ["10"] and "pt" not in sent
