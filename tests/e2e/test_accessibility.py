"""The shopper's pages checked with axe-core (WCAG 2.0/2.1 A and AA, best practices) in every
state a shopper can meet: the checkout form (fresh, with input errors, with a saved card, with
the payment-method select and the "save this card" box, in popup mode), the card-registration
page (and its result) and the billing card page, the error pages (unknown, expired, out of
attempts) and the result page (succeeded as the receipt of a paid page, failed, pending,
unknown), in Japanese and English, on a desktop and on a phone. No violation of impact serious
or critical is allowed. A full-page screenshot of each goes to
artifacts/e2e/states/<state>-<lang>-<desktop|phone>.png.

axe-core comes from npm (package-lock.json, installed by scripts/bootstrap) and is injected
into the page; only the checking browser contexts bypass the pages' CSP to let it in. Also: the
card form's errors are announced, and a keyboard alone pays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, Route, ViewportSize, expect

from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.e2e.conftest import ARTIFACTS, ROOT, Server, create_session
from tests.e2e.test_billing_card_page import new_page as new_billing_page
from tests.e2e.test_billing_card_page import new_payer
from tests.e2e.test_checkout_page import fill_card
from tests.e2e.test_shopper_edges import THREE_DS, _expire
from tests.e2e.test_stored_cards import EMAIL, customer_with_card, new_uid

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
STATES = ARTIFACTS / "states"
VIEWPORTS: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
LANGS = ("ja", "en")
AXE_OPTIONS = {"runOnly": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}
BLOCKING = ("serious", "critical")
# What the script hands back of axe's answer: enough to find and fix each violation.
AXE_RUN = """async (options) => {
  const result = await axe.run(document, options);
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}"""

# Opens the state in `page` (a fresh context of the language's viewport) for `lang`.
Opener = Callable[[Page, str], Awaitable[None]]


@dataclass
class Checked:
    name: str
    violations: list[dict[str, Any]]

    def blocking(self) -> list[dict[str, Any]]:
        return [v for v in self.violations if v["impact"] in BLOCKING]


def with_lang(url: str, lang: str) -> str:
    """Japanese is the page's default (the contexts' locale is ja-JP); English is asked for."""
    if lang == "ja":
        return url
    return f"{url}{'&' if '?' in url else '?'}lang=en"


@pytest.fixture(scope="module")
def axe_script() -> str:
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: scripts/bootstrap installs it (npm ci)")
    STATES.mkdir(parents=True, exist_ok=True)
    return str(AXE)


@pytest.fixture
async def axe_contexts(browser: Browser) -> AsyncIterator[Callable[[str], Awaitable[Page]]]:
    """Pages in contexts that let axe in past the CSP; the shop's pages answer 204 (a
    navigation to them stays where it is), so a result page's redirect to the shop leaves the
    page under test in place."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    async def open_page(viewport: str) -> Page:
        context = await browser.new_context(
            locale="ja-JP", viewport=VIEWPORTS[viewport], bypass_csp=True
        )
        contexts.append(context)

        async def stay(route: Route) -> None:
            await route.fulfill(status=204)

        await context.route(lambda url: "/healthz?" in url, stay)
        page = await context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        return page

    yield open_page
    for context in contexts:
        await context.close()
    assert not errors, f"page errors: {errors}"


async def check(page: Page, axe_script: str, name: str) -> Checked:
    """axe over the page as it is now, and its full-page screenshot."""
    await page.wait_for_load_state("load")
    await page.evaluate("() => document.fonts.ready.then(() => true)")
    await page.add_script_tag(path=axe_script)
    violations: list[dict[str, Any]] = await page.evaluate(AXE_RUN, AXE_OPTIONS)
    await page.screenshot(path=str(STATES / f"{name}.png"), full_page=True)
    return Checked(name, violations)


def report(checked: list[Checked]) -> str:
    lines: list[str] = []
    for c in checked:
        for v in c.blocking():
            lines.append(f"{c.name}: {v['id']} ({v['impact']}): {v['help']}")
            lines.extend(f"    {n['target']}: {n['summary']}" for n in v["nodes"])
    return "\n".join(lines)


async def check_every_combination(
    state: str, opener: Opener, open_page: Callable[[str], Awaitable[Page]], axe_script: str
) -> None:
    """The state in both languages at both sizes: opened afresh for each language, checked on
    a desktop, then (the same document) on a phone."""
    checked: list[Checked] = []
    for lang in LANGS:
        page = await open_page("desktop")
        await opener(page, lang)
        assert await page.evaluate("() => document.documentElement.lang") == lang
        checked.append(await check(page, axe_script, f"{state}-{lang}-desktop"))
        await page.set_viewport_size(VIEWPORTS["phone"])
        checked.append(await check(page, axe_script, f"{state}-{lang}-phone"))
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= VIEWPORTS["phone"]["width"], f"{state}-{lang}: a phone scrolls sideways"
    minor = [
        f"{c.name}: {v['id']} ({v['impact']})"
        for c in checked
        for v in c.violations
        if v["impact"] not in BLOCKING
    ]
    if minor:
        print("axe, minor and moderate:", json.dumps(minor, ensure_ascii=False, indent=1))
    failures = report(checked)
    assert not failures, f"axe found serious or critical violations:\n{failures}"


def goto(url: str) -> Opener:
    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(url, lang))

    return opener


# --- the states -------------------------------------------------------------------------------


async def state_checkout(server: Server) -> Opener:
    cs = await create_session(server, order_id="a11yfresh")
    return goto(cs["url"])


async def state_checkout_errors(server: Server) -> Opener:
    cs = await create_session(server, order_id="a11yerrors")

    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(cs["url"], lang))
        await page.fill("#fn", "TARO1")
        await page.click("#purchase")
        await expect(page.locator("#cn-error")).not_to_be_empty()

    return opener


async def state_checkout_saved_card(server: Server) -> Opener:
    uid = new_uid()
    await customer_with_card(server, uid)
    cs = await create_session(server, customer_id=uid, order_id=f"a11y{uid}")
    return goto(cs["url"])


async def state_checkout_options(server: Server) -> Opener:
    """The payment-method select, a saved card's customer offered "save this card", and the
    new card chosen (so the card fields and the box show)."""
    uid = new_uid()
    await customer_with_card(server, uid)
    cs = await create_session(
        server,
        customer_id=uid,
        email=EMAIL,
        offer_save_card=True,
        payment_methods=["10", "61", "80"],
        installment_counts=[3, 6, 12],
    )

    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(cs["url"], lang))
        await page.check('input[name=card_choice][value="new"]')
        await expect(page.locator("#save_card")).to_be_visible()

    return opener


async def state_card_registration(server: Server) -> Opener:
    uid = new_uid()
    await customer_with_card(server, uid)
    r = await server.merchant.post(
        f"/v1/customers/{uid}/card-sessions",
        json={"email": EMAIL, "success_url": f"{server.url}/healthz?saved=1"},
    )
    assert r.status_code == 201, r.text
    return goto(r.json()["url"])


async def state_card_registered(server: Server) -> Opener:
    """A card page after its card was saved (posted as the page's form does, with a magic
    token): its link shows the registration's result."""
    uid = new_uid()
    r = await server.merchant.post(
        f"/v1/customers/{uid}/card-sessions",
        json={"email": EMAIL, "success_url": f"{server.url}/healthz?saved=1"},
    )
    assert r.status_code == 201, r.text
    cs = r.json()
    async with httpx.AsyncClient(base_url=server.url) as shopper:
        answer = await shopper.post(
            f"/checkout/{cs['id']}", data={"tkn": "tok_approved", "lang": "ja"}
        )
    assert answer.status_code == 200, answer.text

    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(cs["url"], lang))
        await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible()

    return opener


async def state_billing_card(server: Server) -> Opener:
    cs = await new_billing_page(server, await new_payer(server))
    return goto(cs["url"])


async def state_error_not_found(server: Server) -> Opener:
    return goto(f"{server.url}/checkout/cs_{'0' * 32}")


async def state_error_expired(server: Server) -> Opener:
    cs = await create_session(server, order_id="a11yexpired")
    await _expire(server, cs["id"])
    return goto(cs["url"])


async def state_error_too_many(server: Server) -> Opener:
    cs = await create_session(server, order_id="a11ylimit")
    for _ in range(5):
        token = await make_token(server.sim, card=cards.CARD_DECLINE_G12, three_ds=THREE_DS)
        r = await server.merchant.post(
            f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token}
        )
        assert r.status_code == 402, r.text

    async def opener(page: Page, lang: str) -> None:
        answer = await page.goto(with_lang(cs["url"], lang))
        assert answer is not None and answer.status == 429

    return opener


async def state_result_receipt(server: Server) -> Opener:
    """A paid page's link reopened: its receipt (the succeeded result, with its countdown)."""
    cs = await create_session(server, order_id="a11ypaid")
    r = await server.merchant.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "tok_approved"}
    )
    assert r.status_code == 200, r.text

    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(cs["url"], lang))
        await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible()

    return opener


async def state_result_failed(server: Server) -> Opener:
    """The answer to the form's post of a declined card (the page's own form, with a magic
    token standing for the card after its 3-D Secure): one decline per language."""
    cs = await create_session(server, order_id="a11ydecline")

    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(cs["url"], lang))
        async with page.expect_navigation():
            await page.evaluate(
                """() => {
                  document.getElementById('tkn').value = 'tok_declined_g12';
                  HTMLFormElement.prototype.submit.call(document.getElementById('mainform'));
                }"""
            )
        await expect(page.locator('#result[data-status="failed"]')).to_be_visible()

    return opener


async def state_result_unknown(server: Server) -> Opener:
    cs = await create_session(server, order_id="a11yunknown")
    r = await server.sim.post("/_sandbox/faults", json={"garbage_after_charge": 1.0, "seed": 1})
    assert r.status_code == 200, r.text
    try:
        r = await server.merchant.post(
            f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "tok_approved"}
        )
        assert r.status_code == 202, r.text
    finally:
        await server.sim.post("/_sandbox/faults", json={})

    async def opener(page: Page, lang: str) -> None:
        await page.goto(with_lang(cs["url"], lang))
        await expect(page.locator('#result[data-status="unknown"]')).to_be_visible()

    return opener


STATE_SETUPS: dict[str, Callable[[Server], Awaitable[Opener]]] = {
    "checkout": state_checkout,
    "checkout-errors": state_checkout_errors,
    "checkout-saved-card": state_checkout_saved_card,
    "checkout-options": state_checkout_options,
    "card-registration": state_card_registration,
    "card-registered": state_card_registered,
    "billing-card": state_billing_card,
    "error-not-found": state_error_not_found,
    "error-expired": state_error_expired,
    "error-too-many": state_error_too_many,
    "result-receipt": state_result_receipt,
    "result-failed": state_result_failed,
    "result-unknown": state_result_unknown,
}


@pytest.mark.parametrize("state", list(STATE_SETUPS))
async def test_no_serious_accessibility_violation(
    state: str,
    server: Server,
    axe_contexts: Callable[[str], Awaitable[Page]],
    axe_script: str,
) -> None:
    opener = await STATE_SETUPS[state](server)
    await check_every_combination(state, opener, axe_contexts, axe_script)


async def test_no_serious_accessibility_violation_in_popup_mode(
    popup_server: Server, axe_contexts: Callable[[str], Awaitable[Page]], axe_script: str
) -> None:
    """The checkout page when the gateway draws the card form (CHECKOUT_MODE=popup): our
    page around it (the gateway's own form is not ours to check)."""
    cs = await create_session(popup_server, order_id="a11ypopup")
    await check_every_combination("checkout-popup", goto(cs["url"]), axe_contexts, axe_script)


async def test_no_serious_accessibility_violation_while_pending(
    server: Server, axe_contexts: Callable[[str], Awaitable[Page]], axe_script: str
) -> None:
    """The result page while the gateway has not answered: a slow card's pay is in flight
    (the simulator holds its answer) while the page is opened in each language and size."""
    cs = await create_session(server, order_id="a11ypending")
    before = (await server.sim.get("/_sandbox/config")).json()["slow_seconds"]
    await server.sim.post("/_sandbox/config", json={"slow_seconds": 12})
    pay = asyncio.create_task(
        server.merchant.post(
            f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "tok_slow"}, timeout=60
        )
    )
    try:
        for _ in range(100):
            session = (await server.merchant.get(f"/v1/checkout/sessions/{cs['id']}")).json()
            if session["payment_id"]:
                break
            await asyncio.sleep(0.1)
        # The slow card waits what the setting said when its charge began.
        await server.sim.post("/_sandbox/config", json={"slow_seconds": before})

        async def opener(page: Page, lang: str) -> None:
            await page.goto(with_lang(cs["url"], lang))
            await expect(page.locator('#result[data-status="pending"]')).to_be_visible()

        await check_every_combination("result-pending", opener, axe_contexts, axe_script)
    finally:
        await server.sim.post("/_sandbox/config", json={"slow_seconds": before})
        r = await pay
    assert r.status_code == 200, r.text


async def test_each_card_form_error_is_announced(server: Server, page: Page) -> None:
    """A failed check marks each field (aria-invalid, its error in its description) and says
    every error in the form's alert, a live region, once, with the field's name."""
    cs = await create_session(server, order_id="a11yannounce")
    await page.goto(cs["url"])
    alert = page.locator("#form-alert")
    await expect(alert).to_have_attribute("role", "alert")
    await page.fill("#fn", "TARO1")
    await page.click("#purchase")
    await expect(alert).to_contain_text("入力内容に誤りがあります")
    announced = await alert.text_content() or ""
    # What the box shows; the rest is said, not shown (visually hidden).
    shown = await alert.evaluate("a => a.firstChild.nodeValue")
    assert shown == "入力内容に誤りがあります。赤く表示された項目をご確認ください。"
    await expect(alert.locator(".visually-hidden")).to_have_count(1)
    for field, slot, name in [
        ("cn", "cn-error", "カード番号"),
        ("ed_month", "ed-error", "有効期限"),
        ("fn", "fn-error", "名"),
        ("ln", "ln-error", "姓"),
        ("cvv", "cvv-error", "セキュリティコード"),
    ]:
        error = (await page.locator(f"#{slot}").text_content() or "").strip()
        assert error, f"no error shown for {field}"
        assert f"{name}: {error}" in announced, f"{field}'s error is not announced: {announced}"
        await expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        described = await page.locator(f"#{field}").get_attribute("aria-describedby") or ""
        assert slot in described.split(), f"{field} is not described by its error"
    # Focus goes to the first field to fix.
    assert await page.evaluate("() => document.activeElement.id") == "cn"


async def test_a_keyboard_alone_pays(server: Server, page: Page) -> None:
    """Tab from the top of the page through the card form in reading order, type, choose the
    expiry with the arrow keys, then Space on the pay button: the result page says paid."""
    cs = await create_session(server, order_id="a11ykeys")
    await page.goto(cs["url"] + "?lang=en")
    await expect(page.locator("#cn")).to_be_visible()
    order: list[str] = []

    async def tab() -> str:
        await page.keyboard.press("Tab")
        focused: str = await page.evaluate(
            "() => document.activeElement.id || document.activeElement.className"
        )
        order.append(focused)
        return focused

    # The language switch comes first, then the card number.
    assert await tab() == "lang-switch"
    assert await tab() == "cn"
    await page.keyboard.type(cards.CARD_OK)
    assert await tab() == "ed_month"
    for _ in range(12):
        await page.keyboard.press("ArrowDown")
    await expect(page.locator("#ed_month")).to_have_value("12")
    assert await tab() == "ed_year"
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("ArrowDown")  # next year's December: in the future
    assert await tab() == "fn"
    await page.keyboard.type("HANAKO")
    assert await tab() == "ln"
    await page.keyboard.type("SATO")
    assert await tab() == "cvv"
    await page.keyboard.type("123")
    assert await tab() == "purchase", order
    # The focused button shows that it has the focus.
    ring = await page.evaluate("() => getComputedStyle(document.activeElement).boxShadow")
    assert ring not in ("", "none"), "no visible focus on the pay button"
    await page.keyboard.press("Space")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    await expect(page.locator(".meta--result").first).to_contain_text("a11ykeys")
    await page.screenshot(path=str(ARTIFACTS / "keyboard-paid-en.png"), full_page=True)


async def test_enter_in_a_card_field_pays_too(server: Server, page: Page) -> None:
    """Enter in the last field starts the same flow as the button (never a post without a
    token)."""
    cs = await create_session(server, order_id="a11yenter")
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_OK)
    await page.focus("#cvv")
    await page.keyboard.press("Enter")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
