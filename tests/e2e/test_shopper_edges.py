"""The shopper's edges (issue 19, first part), in Chromium: error pages wholly in the page's
language with no raw status code, a page out of attempts shows its limit before the card is
typed again, the language from the browser and from the demo shop, a card number typed with a
Japanese IME. Screenshots of each state go to artifacts/e2e/."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from playwright.async_api import Browser, Page, expect

from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.e2e.conftest import ARTIFACTS, Server, create_session
from tests.e2e.test_checkout_page import fill_card, record_posts
from tests.support.db import dsn

THREE_DS = {"am": "1000", "tx": "100", "sf": "480", "em": "hanako@example.com"}
# Latin words a Japanese error page may hold: the language switch, "URL".
ALLOWED_LATIN = {"English", "URL"}


async def _expire(server: Server, cs_id: str) -> None:
    conn = await asyncpg.connect(dsn(server.db_url))
    try:
        await conn.execute(
            "UPDATE checkout_sessions SET expires_at = now() - interval '1 minute' WHERE id = $1",
            cs_id,
        )
    finally:
        await conn.close()


async def _error_text(page: Page) -> str:
    section = page.locator("section.result--error")
    await expect(section).to_be_visible()
    return await section.inner_text()


def _latin_words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]{3,}", text)) - ALLOWED_LATIN


async def test_error_pages_speak_the_pages_language_without_status_codes(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2eexpired")
    await _expire(server, cs["id"])
    cases: list[tuple[str, str, str]] = [
        (cs["url"], "ja", "expired"),
        (cs["url"] + "?lang=en", "en", "expired"),
        # After the English page the browser remembers English: Japanese is asked for.
        (f"{server.url}/checkout/cs_{'0' * 32}?lang=ja", "ja", "not_found"),
        (f"{server.url}/checkout/cs_{'0' * 32}?lang=en", "en", "not_found"),
    ]
    for url, lang, kind in cases:
        r = await page.goto(url)
        assert r is not None and r.status in (404, 410)
        text = await _error_text(page)
        assert await page.evaluate("() => document.documentElement.lang") == lang
        assert not re.search(r"\b(404|410)\b", text), text
        if lang == "ja":
            assert not _latin_words(text), f"English on a Japanese page: {text}"
        else:
            assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", text), text
        await page.screenshot(path=str(ARTIFACTS / f"error-{kind}-{lang}.png"), full_page=True)


async def test_a_page_out_of_attempts_shows_the_limit_before_the_card_is_typed(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2elimit")
    for _ in range(5):
        token = await make_token(server.sim, card=cards.CARD_DECLINE_G12, three_ds=THREE_DS)
        r = await server.merchant.post(
            f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token}
        )
        assert r.status_code == 402, r.text
    answer = await page.goto(cs["url"])
    assert answer is not None and answer.status == 429
    text = await _error_text(page)
    assert "回数" in text and not _latin_words(text)
    assert await page.locator("#cn").count() == 0, "no card form to type into"
    await expect(page.locator("a.btn", has_text="戻る")).to_have_attribute(
        "href", f"{server.url}/healthz?canceled=1"
    )
    await page.screenshot(path=str(ARTIFACTS / "limit-ja.png"), full_page=True)


async def test_the_browsers_language_and_the_demo_shops_carry_to_the_checkout(
    server: Server, browser: Browser
) -> None:
    cs = await create_session(server, order_id="e2eaccept")
    context = await browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    try:
        page = await context.new_page()
        await page.goto(cs["url"])
        assert await page.evaluate("() => document.documentElement.lang") == "en"
        await page.screenshot(path=str(ARTIFACTS / "checkout-accept-language-en.png"))
    finally:
        await context.close()

    context = await browser.new_context(locale="ja-JP")
    try:
        page = await context.new_page()
        await page.goto(server.url + "/?lang=en")
        await page.click("form button[type=submit]")
        await page.wait_for_url("**/checkout/cs_*")
        assert page.url.endswith("?lang=en")
        assert await page.evaluate("() => document.documentElement.lang") == "en"
    finally:
        await context.close()


async def test_a_card_number_typed_with_a_japanese_ime_is_converted_grouped_and_named(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2eime")
    await page.goto(cs["url"])
    # A tester sees that nothing is charged; a shopper can go back to the shop.
    await expect(page.locator("#sandbox-badge")).to_contain_text("テスト環境")
    await expect(page.locator("#back-to-shop")).to_have_attribute(
        "href", f"{server.url}/healthz?canceled=1"
    )
    # The pay-by time in Japan's time, said so.
    expires = datetime.fromisoformat(cs["expires_at"].replace("Z", "+00:00"))
    jst = expires.astimezone(timezone(timedelta(hours=9))).strftime("%Y-%m-%d %H:%M")
    await expect(page.locator("#expires-at").first).to_have_text(f"{jst} （日本時間）")
    full_width = "".join(chr(ord(d) + 0xFEE0) for d in cards.CARD_OK)
    await fill_card(page, cards.CARD_OK)
    await page.fill("#cn", "")
    await page.locator("#cn").press_sequentially(full_width)
    await expect(page.locator("#cn")).to_have_value(
        " ".join(cards.CARD_OK[i : i + 4] for i in range(0, 16, 4))
    )
    await expect(page.locator("#cn-brand")).to_have_text("VISA")
    # A Visa's code has 3 digits: a fourth is not taken; full-width digits are converted.
    await page.fill("#cvv", "")
    await page.locator("#cvv").press_sequentially("１２３４")
    await expect(page.locator("#cvv")).to_have_value("123")
    await page.screenshot(path=str(ARTIFACTS / "checkout-ime-ja.png"), full_page=True)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    # The shop's order number, not our internal id.
    await expect(page.locator(".meta--result").first).to_contain_text("e2eime")
    assert "pay_" not in await page.locator(".meta--result").first.inner_text()
    amex: dict[str, Any] = await create_session(server, order_id="e2eamex")
    await page.goto(amex["url"])
    await page.locator("#cn").press_sequentially("378282246310005")
    await expect(page.locator("#cn")).to_have_value("3782 822463 10005")
    await expect(page.locator("#cn-brand")).to_have_text("American Express")


async def test_the_result_page_follows_an_unknown_payment_until_it_settles(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2eunknown")
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_OK)
    # The charge is made but its answer is unreadable: the outcome is unknown for now.
    r = await server.sim.post("/_sandbox/faults", json={"garbage_after_charge": 1.0, "seed": 1})
    assert r.status_code == 200, r.text
    try:
        await page.click("#purchase")
        await expect(page.locator('#result[data-status="unknown"]')).to_be_visible(timeout=15000)
    finally:
        await server.sim.post("/_sandbox/faults", json={})
    await page.screenshot(path=str(ARTIFACTS / "result-unknown-ja.png"), full_page=True)
    # The janitor's pass finds the charge in the gateway's records; the open page follows.
    r = await server.ops.post("/v1/reconciliations", json={"scope": "open", "limit": 100})
    assert r.status_code == 200, r.text
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    await expect(page.locator('[data-panel="succeeded"]')).to_be_visible()
    # Reopening the page's link shows the receipt.
    answer = await page.goto(cs["url"])
    assert answer is not None and answer.status == 200
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible()
    await page.screenshot(path=str(ARTIFACTS / "result-reopened-ja.png"), full_page=True)


async def test_a_result_has_its_own_url_so_reload_and_back_never_post_the_token_again(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2eprg")
    await page.goto(cs["url"])
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await fill_card(page, cards.CARD_DECLINE_G12)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="failed"]')).to_be_visible(timeout=15000)
    declined = page.url
    assert re.search(rf"/checkout/{cs['id']}/payments/[\w-]+\?lang=ja$", declined), declined
    # Reloading the decline shows it again: no second post, no second failed payment.
    answer = await page.reload()
    assert answer is not None and answer.status == 200 and page.url == declined
    await expect(page.locator('#result[data-status="failed"]')).to_be_visible()
    assert len(posts) == 1

    await page.click('[data-link="retry"]')
    await fill_card(page, cards.CARD_OK)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    paid = page.url
    assert paid != declined and "/payments/" in paid
    # Back from the receipt: the page it came from shows the receipt, no resubmission prompt.
    answer = await page.go_back()
    assert answer is not None and answer.status == 200
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible()
    assert len(posts) == 2
    r = await server.ops.get("/v1/payments", params={"order_id": "e2eprg"})
    statuses = sorted(p["status"] for p in r.json()["data"])
    assert statuses == ["authorized", "failed"], statuses
    await page.goto(declined)  # a bookmark of the decline still tells what happened
    await expect(page.locator('#result[data-status="failed"]')).to_be_visible()


# Playwright cannot read a page while its form post is pending (it waits for the navigation):
# the page records what its progress line said, with the time, where the next page reads it.
RECORD_PROGRESS = """
document.addEventListener('DOMContentLoaded', () => {
  const node = document.getElementById('pay-progress');
  if (!node) return;
  const t0 = Date.now();
  new MutationObserver(() => {
    const seen = JSON.parse(sessionStorage.getItem('progress') || '[]');
    seen.push([Date.now() - t0, node.hidden, node.textContent]);
    sessionStorage.setItem('progress', JSON.stringify(seen));
  }).observe(node, {childList: true, characterData: true, subtree: true, attributes: true});
});
"""


async def test_a_slow_gateway_keeps_the_shopper_told_what_is_happening(
    server: Server, page: Page
) -> None:
    await page.add_init_script(RECORD_PROGRESS)
    cs = await create_session(server, order_id="e2eslow")
    await page.goto(cs["url"])
    await fill_card(page, cards.CARD_SLOW)
    (await server.sim.post("/_sandbox/config", json={"slow_seconds": 17})).raise_for_status()
    try:
        await page.click("#purchase")
        await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=40000)
    finally:
        await server.sim.post("/_sandbox/config", json={"slow_seconds": 2.0})
    seen = await page.evaluate("() => JSON.parse(sessionStorage.getItem('progress') || '[]')")
    said = [text for _ms, hidden, text in seen if text and not hidden]
    assert said == [
        "カード会社に確認しています。このままお待ちください。",
        "まだ確認しています。このページを閉じたり再読み込みしたりせずにお待ちください。"
        "二重に請求されることはありません。",
        "カード会社の応答に時間がかかっています。1分ほどかかることがあります。"
        "結果はこのページに表示されます。",
    ], seen
    # Each step came when it was due (5 s, 15 s after the post), not all at once.
    times = {text: ms for ms, _hidden, text in seen if text}
    assert times[said[2]] - times[said[0]] >= 14000, seen


async def test_the_language_switch_persists_when_the_link_is_reopened(
    server: Server, page: Page
) -> None:
    cs = await create_session(server, order_id="e2elangkeep")
    await page.goto(cs["url"])  # a Japanese browser
    assert await page.evaluate("() => document.documentElement.lang") == "ja"
    await page.click("a[hreflang=en]")
    await page.wait_for_url("**?lang=en")
    # The link from the shop's e-mail, opened again later: still English.
    await page.goto(cs["url"])
    assert await page.evaluate("() => document.documentElement.lang") == "en"
    await fill_card(page, cards.CARD_OK)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert page.url.endswith("?lang=en")
    assert await page.evaluate("() => document.documentElement.lang") == "en"
