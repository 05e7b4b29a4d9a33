"""The merchant's branding in Chromium (issue 19): SHOP_NAME in the header and every title,
SHOP_LOGO_URL loaded from the shop's own origin under the pages' CSP, SHOP_ACCENT_COLOR on the
pay button, card brand marks from our origin (the detected one follows the typed number),
and saved cards as "•••• 0317". Screenshots in ja and en, desktop and phone, go to
artifacts/e2e/branding-*.png."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.e2e.conftest import ARTIFACTS, Server, _server, create_session
from tests.support.pg import free_port

SHOP_NAME = "抹茶本舗 Matcha Honpo"
ACCENT = "#6b2f8a"  # dark enough for white text: used as it is
ACCENT_RGB = "rgb(107, 47, 138)"
EMAIL = "hanako@example.com"
BULLETS = "\u2022" * 4
# The shop's logo, served by "the shop" (another origin than the payment pages').
LOGO_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="96" height="64" viewBox="0 0 96 64">
<rect width="96" height="64" rx="12" fill="#6b2f8a"/>
<circle cx="32" cy="32" r="16" fill="#b7d77a"/>
<rect x="54" y="20" width="28" height="8" rx="4" fill="#ffffff"/>
<rect x="54" y="36" width="20" height="8" rx="4" fill="#ffffff"/>
</svg>"""


class _Logo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path != "/logo.svg":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/svg+xml")
        self.send_header("Content-Length", str(len(LOGO_SVG)))
        self.end_headers()
        self.wfile.write(LOGO_SVG)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="session")
def shop_origin() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _Logo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="session")
async def branded(e2e_db: str, server_logs: Path, shop_origin: str) -> AsyncIterator[Server]:
    async for s in _server(
        e2e_db,
        server_logs,
        "branded",
        CHECKOUT_MODE="custom",
        SHOP_NAME=SHOP_NAME,
        SHOP_LOGO_URL=f"{shop_origin}/logo.svg",
        SHOP_ACCENT_COLOR=ACCENT,
    ):
        yield s


async def _context(browser: Browser, locale: str, width: int, height: int) -> BrowserContext:
    return await browser.new_context(locale=locale, viewport={"width": width, "height": height})


def _watch(page: Page) -> list[str]:
    """Page errors and CSP violations, as the `page` fixture collects them."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text) if m.type == "error" and "Content Security" in m.text else None
        ),
    )
    return errors


async def _loaded(page: Page, selector: str) -> list[dict[str, Any]]:
    """Each image's src and natural width, once every one has loaded (or failed)."""
    await page.wait_for_function(
        "s => [...document.querySelectorAll(s)].every(i => i.complete)", arg=selector
    )
    images: list[dict[str, Any]] = await page.locator(selector).evaluate_all(
        "is => is.map(i => ({src: i.currentSrc, width: i.naturalWidth, alt: i.alt,"
        " brand: i.dataset.brand, hidden: i.getAttribute('aria-hidden')}))"
    )
    return images


async def _check_header(page: Page, shop_origin: str) -> None:
    await expect(page.locator("#shop-name")).to_have_text(SHOP_NAME)
    assert (await page.title()).endswith(f"| {SHOP_NAME}")
    (logo,) = await _loaded(page, "#shop-logo")
    assert logo == {
        "src": f"{shop_origin}/logo.svg",
        "width": 96,
        "alt": SHOP_NAME,
        "brand": None,
        "hidden": None,
    }


async def test_the_shops_name_logo_and_accent_on_its_checkout_page(
    branded: Server, page: Page, shop_origin: str
) -> None:
    cs = await create_session(branded, order_id="e2ebrand")
    answer = await page.goto(cs["url"])
    assert answer is not None
    csp = (await answer.all_headers())["content-security-policy"]
    assert f"img-src 'self' data: {shop_origin};" in csp, csp
    assert "unsafe-inline" not in csp
    await _check_header(page, shop_origin)
    # The accent, from /static/theme.css (our origin, no inline style): the pay button and links.
    button = page.locator("#purchase")
    assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == ACCENT_RGB
    assert await button.evaluate("b => getComputedStyle(b).color") == "rgb(255, 255, 255)"
    link = page.locator("#back-to-shop")
    assert await link.evaluate("a => getComputedStyle(a).color") == ACCENT_RGB
    # The accepted brands, as marks from our origin, named for screen readers.
    accepted = await _loaded(page, "#accepted-brands img")
    assert [i["brand"] for i in accepted] == ["visa", "mastercard", "jcb", "amex", "diners"]
    assert [i["alt"] for i in accepted] == [
        "VISA",
        "Mastercard",
        "JCB",
        "American Express",
        "Diners Club",
    ]
    for image in accepted:
        assert image["src"] == f"{branded.url}/static/checkout/brands/{image['brand']}.svg"
        assert image["width"] > 0, image
    await page.screenshot(path=str(ARTIFACTS / "branding-checkout-ja-desktop.png"), full_page=True)

    # The detected brand's mark follows the number as it is typed; #cn-brand says it in words.
    (mark,) = await _loaded(page, "#cn-brand-mark")
    assert (mark["brand"], mark["alt"], mark["hidden"]) == ("generic", "", "true")
    assert mark["width"] > 0
    cn = page.locator("#cn")
    typed = [
        ("4", "visa", "VISA"),
        ("5555", "mastercard", "Mastercard"),
        ("3530", "jcb", "JCB"),
        ("37", "amex", "American Express"),
        ("36", "diners", "Diners Club"),
        ("9", "generic", ""),
    ]
    for digits, brand, words in typed:
        await cn.fill("")
        await cn.press_sequentially(digits)
        await expect(page.locator("#cn-brand-mark")).to_have_attribute("data-brand", brand)
        await expect(page.locator("#cn-brand")).to_have_text(words)
        (mark,) = await _loaded(page, "#cn-brand-mark")
        assert mark["src"] == f"{branded.url}/static/checkout/brands/{brand}.svg"
        assert mark["width"] > 0, mark
    await cn.fill("")
    await cn.press_sequentially(cards.CARD_OK)
    await expect(page.locator("#cn-brand-mark")).to_have_attribute("data-brand", "visa")
    await page.locator("#cn").blur()
    await page.screenshot(path=str(ARTIFACTS / "branding-checkout-ja-typed.png"), full_page=True)


@pytest.mark.parametrize(
    ("locale", "lang", "width", "height", "name"),
    [
        ("en-US", "en", 1280, 900, "en-desktop"),
        ("ja-JP", "ja", 390, 844, "ja-phone"),
        ("en-US", "en", 390, 844, "en-phone"),
    ],
)
async def test_the_branded_page_in_each_language_and_size(
    branded: Server,
    browser: Browser,
    shop_origin: str,
    locale: str,
    lang: str,
    width: int,
    height: int,
    name: str,
) -> None:
    cs = await create_session(branded, order_id=f"e2ebrand{name.replace('-', '')}")
    context = await _context(browser, locale, width, height)
    try:
        page = await context.new_page()
        errors = _watch(page)
        await page.goto(cs["url"])
        assert await page.evaluate("() => document.documentElement.lang") == lang
        await _check_header(page, shop_origin)
        button = page.locator("#purchase")
        assert await button.evaluate("b => getComputedStyle(b).backgroundColor") == ACCENT_RGB
        accepted = await _loaded(page, "#accepted-brands img")
        assert len(accepted) == 5 and all(i["width"] > 0 for i in accepted)
        # Nothing wider than the screen on a phone.
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= width
        await page.screenshot(path=str(ARTIFACTS / f"branding-checkout-{name}.png"), full_page=True)
        assert not errors, f"page errors / CSP violations: {errors}"
    finally:
        await context.close()


async def _customer_with_card(server: Server, uid: str) -> None:
    r = await server.merchant.post("/v1/customers", json={"uid": uid, "email": EMAIL})
    assert r.status_code == 201, r.text
    token = await make_token(
        server.sim,
        card=cards.CARD_3DS_CHALLENGE,
        three_ds={"am": "0", "tx": "0", "sf": "0", "em": EMAIL},
    )
    r = await server.merchant.post(f"/v1/customers/{uid}/cards", json={"token": token})
    assert r.status_code == 201, r.text
    # What is stored (and the API answers) stays the gateway's masked number.
    assert r.json()["masked_number"] == "************0317"


async def test_saved_cards_read_bullets_and_the_last_four_with_a_mark(
    branded: Server, page: Page, shop_origin: str
) -> None:
    uid = "e2ebrand" + uuid.uuid4().hex[:12]
    await _customer_with_card(branded, uid)
    cs = await create_session(branded, customer_id=uid)
    await page.goto(cs["url"])
    label = page.locator("#card-choices .card-label").first
    await expect(label).to_have_text(f"{BULLETS} 0317")
    await expect(page.locator("#card-choices")).not_to_contain_text("*")
    marks = await _loaded(page, "#card-choices .choice img.brand-mark")
    # The gateway masks all but the last four: the brand is not known, the mark is generic.
    assert [(m["brand"], m["width"] > 0) for m in marks] == [("generic", True)]
    await page.screenshot(path=str(ARTIFACTS / "branding-saved-card-ja.png"), full_page=True)

    # The customer's card page lists it the same way.
    r = await branded.merchant.post(f"/v1/customers/{uid}/card-sessions", json={"email": EMAIL})
    assert r.status_code == 201, r.text
    await page.goto(r.json()["url"] + "?lang=en")
    await _check_header(page, shop_origin)
    await expect(page.locator("#registered-cards .card-label")).to_have_text(f"{BULLETS} 0317")
    delete = page.locator('#registered-cards li[data-num="1"] button')
    await expect(delete).to_have_attribute("aria-label", f"Delete: {BULLETS} 0317")
    marks = await _loaded(page, "#registered-cards img.brand-mark")
    assert len(marks) == 1 and marks[0]["width"] > 0
    await page.screenshot(path=str(ARTIFACTS / "branding-card-page-en.png"), full_page=True)


async def test_error_pages_carry_the_shops_name_too(
    branded: Server, page: Page, shop_origin: str
) -> None:
    answer = await page.goto(f"{branded.url}/checkout/cs_{'0' * 32}")
    assert answer is not None and answer.status == 404
    await _check_header(page, shop_origin)
    await page.screenshot(path=str(ARTIFACTS / "branding-error-ja.png"), full_page=True)
