"""The ops console in Chromium (issue 21, first part): sign in with an ops key, find a payment
by its order number, capture it, cancel another, resolve a flagged one; a merchant key and an
ended session are refused; axe finds no serious violation on any console page, in both
languages, on a desktop and a phone (screenshots in artifacts/e2e/states/)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from playwright.async_api import Browser, Page, expect

from app.sandbox.testing import make_token
from tests.e2e.conftest import ARTIFACTS, MERCHANT_KEY, OPS_KEY, Server, create_session
from tests.e2e.test_accessibility import (  # noqa: F401  (fixtures)
    Opener,
    axe_contexts,
    axe_script,
    check_every_combination,
    with_lang,
)
from tests.support.db import dsn

THREE_DS = {"am": "1000", "tx": "100", "sf": "480", "em": "hanako@example.com"}


async def _paid(server: Server, order_id: str) -> dict[str, Any]:
    cs = await create_session(server, order_id=order_id)
    token = await make_token(server.sim, three_ds=THREE_DS)
    r = await server.merchant.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _flag(server: Server, payment_id: str) -> None:
    conn = await asyncpg.connect(dsn(server.db_url))
    try:
        await conn.execute("UPDATE payments SET needs_attention = true WHERE id = $1", payment_id)
    finally:
        await conn.close()


async def _sign_in(page: Page, server: Server, key: str = OPS_KEY, lang: str = "ja") -> None:
    await page.goto(with_lang(f"{server.url}/ops", lang))
    await page.wait_for_url("**/ops/login**")
    await page.fill("#api_key", key)
    await page.click("#sign-in")


async def _open(page: Page, server: Server, order_id: str) -> None:
    await page.click("nav >> text=決済")
    await page.fill("#f-order", order_id)
    await page.click("#filter")
    rows = page.locator("#payments tbody tr")
    await expect(rows).to_have_count(1)
    await rows.locator("a").click()
    await expect(page.locator("#payment-title")).to_be_visible()


async def test_ops_find_capture_cancel_and_resolve(server: Server, page: Page) -> None:
    first = await _paid(server, "e2eops1")
    second = await _paid(server, "e2eops2")
    flagged = await _paid(server, "e2eops3")
    await _flag(server, flagged["id"])

    await _sign_in(page, server)
    await expect(page.locator("#home-title")).to_have_text("対応が必要なもの")
    await expect(page.locator("#tile-attention .ops-tile__count")).not_to_have_text("0")
    await page.screenshot(path=str(ARTIFACTS / "ops-home-ja.png"), full_page=True)

    await _open(page, server, "e2eops1")
    await page.click("#action-capture")
    await expect(page.locator("#confirm-title")).to_have_text("売上を確定する")
    await page.click("#confirm")
    await expect(page.locator("#notice")).to_have_text("売上を確定しました。")
    await expect(page.locator("#payment-status")).to_have_text("売上確定")
    await expect(page.locator("#timeline")).to_contain_text("ops:")
    await page.screenshot(path=str(ARTIFACTS / "ops-payment-captured-ja.png"), full_page=True)

    await _open(page, server, "e2eops2")
    await page.click("#action-cancel")
    await page.click("#confirm")
    await expect(page.locator("#payment-status")).to_have_text("取消")

    await _open(page, server, "e2eops3")
    await expect(page.locator("#attention")).to_be_visible()
    await page.click("#action-resolve")
    await page.select_option("#status", "authorized")
    await page.click("#confirm")  # the reason is required: the browser stops it
    await expect(page.locator("#confirm-title")).to_be_visible()
    await page.fill("#reason", "checked the gateway's control panel")
    await page.click("#confirm")
    await expect(page.locator("#notice")).to_have_text("手動で確定しました。")
    await expect(page.locator("#attention")).to_have_count(0)

    for p, status in ((first, "captured"), (second, "canceled"), (flagged, "authorized")):
        r = await server.ops.get(f"/v1/payments/{p['id']}")
        assert r.json()["status"] == status

    await page.click("#sign-out")
    await page.wait_for_url("**/ops/login**")
    await page.goto(f"{server.url}/ops/payments")
    await page.wait_for_url("**/ops/login**")


async def test_ops_read_an_unmatched_kickback_and_send_an_event_again(
    server: Server, page: Page
) -> None:
    payment = await _paid(server, "e2eops4")
    # The sandbox's trusted kickback path, for a charge nobody here made.
    r = await server.ops.get(
        "/kickback/sandbox-kickback-secret?gid=999999777&rst=1&ap=X1&cod=e2enobody"
    )
    assert r.status_code == 200
    await _sign_in(page, server)
    await page.click("nav >> text=結果通知")
    await page.select_option("#f-status", "unmatched")
    await page.click("#filter")
    row = page.locator("#kickbacks tbody tr", has_text="999999777")
    await expect(row).to_have_count(1, timeout=10000)
    await row.locator("a").click()
    await expect(page.locator("#kickback-status")).to_have_text("該当なし")
    await expect(page.locator("#kickback-query")).to_contain_text("e2enobody")
    await page.screenshot(path=str(ARTIFACTS / "ops-kickback-unmatched-ja.png"), full_page=True)

    await page.click("nav >> text=イベント")
    await page.fill("#f-object", payment["id"])
    await page.click("#filter")
    await page.locator("#events tbody tr a").first.click()
    await page.click("#redeliver")
    await expect(page.locator("#notice")).to_contain_text("件の配信を予約しました")
    await page.screenshot(path=str(ARTIFACTS / "ops-event-redelivered-ja.png"), full_page=True)


async def test_a_pass_started_in_the_console_is_followed_to_its_end(
    server: Server, page: Page
) -> None:
    await _sign_in(page, server)
    await page.goto(f"{server.url}/ops/reconcile")
    await page.click("#reconcile")
    await page.wait_for_url("**/ops/reconcile/passes/*")
    # The page reloads itself (a Refresh header) until the pass is over.
    await expect(page.locator("#pass-state")).to_have_attribute(
        "data-state", "done", timeout=20_000
    )
    await page.screenshot(path=str(ARTIFACTS / "ops-reconcile-pass-ja.png"), full_page=True)
    await page.click("text=照合に戻る")
    await expect(page.locator("#passes tbody tr").first).to_have_attribute("data-state", "done")
    await page.screenshot(path=str(ARTIFACTS / "ops-reconcile-history-ja.png"), full_page=True)


async def test_a_form_without_its_csrf_token_and_an_expired_cookie_are_refused(
    server: Server, page: Page
) -> None:
    p = await _paid(server, "e2eopscsrf")
    await _sign_in(page, server)
    await _open(page, server, "e2eopscsrf")
    await page.click("#action-capture")
    # A forged form: the same post without the session's token (DevTools edits the page; the
    # page itself runs no script).
    await page.locator("main input[name=csrf]").evaluate("e => e.remove()")
    await page.click("#confirm")
    await expect(page.locator("main")).to_contain_text("フォームの有効期限が切れたか")
    await page.screenshot(path=str(ARTIFACTS / "ops-csrf-refused-ja.png"), full_page=True)
    assert (await server.ops.get(f"/v1/payments/{p['id']}")).json()["status"] == "authorized"
    # The session's cookie outlives its session: the next page is the sign-in, saying why.
    conn = await asyncpg.connect(dsn(server.db_url))
    try:
        await conn.execute("UPDATE ops_sessions SET expires_at = now() - interval '1 second'")
    finally:
        await conn.close()
    await page.goto(f"{server.url}/ops/payments")
    await page.wait_for_url("**/ops/login?**ended=1")
    await expect(page.locator("#login-problem")).to_contain_text("有効期限が切れました")
    await page.screenshot(path=str(ARTIFACTS / "ops-session-ended-ja.png"), full_page=True)


async def test_a_merchant_key_cannot_sign_in(server: Server, page: Page) -> None:
    await _sign_in(page, server, MERCHANT_KEY)
    await expect(page.locator("#login-problem")).to_contain_text("ops ロール")
    await page.screenshot(path=str(ARTIFACTS / "ops-login-refused-ja.png"), full_page=True)


# --- every console page, checked by axe in both languages and sizes ---------------------------


def _signed_in(server: Server, path: str) -> Opener:
    async def opener(page: Page, lang: str) -> None:
        await _sign_in(page, server, lang=lang)
        await page.wait_for_url("**/ops?**")
        await page.goto(with_lang(f"{server.url}{path}", lang))

    return opener


# 17 pages x 2 languages x 2 sizes, each checked by axe: more than the default two minutes on a
# busy machine.
@pytest.mark.timeout(360)
async def test_no_serious_accessibility_violation_in_the_console(
    server: Server,
    browser: Browser,
    axe_contexts: Callable[[str], Awaitable[Page]],  # noqa: F811
    axe_script: str,  # noqa: F811
) -> None:
    p = await _paid(server, "e2eopsaxe")
    states: dict[str, Opener] = {
        "ops-home": _signed_in(server, "/ops"),
        "ops-payments": _signed_in(server, "/ops/payments"),
        "ops-payment": _signed_in(server, f"/ops/payments/{p['id']}"),
        "ops-confirm-reauthorize": _signed_in(server, f"/ops/payments/{p['id']}/reauthorize"),
        "ops-kickbacks": _signed_in(server, "/ops/kickbacks"),
        "ops-events": _signed_in(server, "/ops/events"),
        "ops-reconcile": _signed_in(server, "/ops/reconcile"),
        "ops-sessions": _signed_in(server, "/ops/sessions"),
        "ops-customers": _signed_in(server, "/ops/customers"),
        "ops-webhooks": _signed_in(server, "/ops/webhooks"),
        "ops-billing": _signed_in(server, "/ops/billing"),
        "ops-csp-reports": _signed_in(server, "/ops/csp-reports"),
        "ops-scripts": _signed_in(server, "/ops/scripts"),
        "ops-session": _signed_in(server, f"/ops/sessions/{p['checkout_session_id']}"),
    }
    listed = await server.merchant.get("/v1/events", params={"object_id": p["id"]})
    event_id = listed.json()["data"][0]["id"]
    states["ops-event"] = _signed_in(server, f"/ops/events/{event_id}")
    ran = await server.ops.post("/v1/reconciliations", json={})
    states["ops-reconcile-pass"] = _signed_in(
        server, f"/ops/reconcile/passes/{ran.json()['pass_id']}"
    )

    async def login(page: Page, lang: str) -> None:
        await page.goto(with_lang(f"{server.url}/ops/login", lang))

    states["ops-login"] = login
    for name, opener in states.items():
        await check_every_combination(name, opener, axe_contexts, axe_script)
