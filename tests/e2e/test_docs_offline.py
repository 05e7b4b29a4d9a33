"""The API docs render with no internet: Swagger UI (`/docs`, and the simulator's
`/sandbox/_sandbox/docs`) and ReDoc (`/redoc`) load everything from our own origin, under a CSP.
Every request to another origin is cut off here, as on a machine without internet."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route

from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

# What the page reports when its CSP blocks something (added before any script runs).
_RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(
  [e.violatedDirective, e.blockedURI, (e.target && e.target.outerHTML || "").slice(0, 40)]));
"""


async def offline(page: Page, origin: str) -> list[str]:
    """Aborts every request that leaves `origin`; returns the list it fills with them."""
    outside: list[str] = []

    async def route(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == urlsplit(origin).netloc or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            outside.append(url)
            await route.abort()

    await page.route("**/*", route)
    return outside


@pytest.mark.parametrize("path", ["/docs", "/sandbox/_sandbox/docs"])
async def test_swagger_ui_renders_offline(server: Server, page: Page, path: str) -> None:
    outside = await offline(page, server.url)
    response = await page.goto(server.url + path)
    assert response is not None and response.status == 200
    assert "script-src 'self'" in (await response.all_headers())["content-security-policy"]
    await page.wait_for_selector(".opblock", timeout=60_000)
    assert await page.locator(".opblock").count() > 10
    if path == "/docs":
        summary = page.locator('.opblock-summary-path[data-path="/v1/checkout/sessions"]')
        assert await summary.count() >= 1
    assert outside == []  # and the page fixture fails on any CSP violation


async def test_redoc_renders_offline(server: Server, browser: Browser) -> None:
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.add_init_script(_RECORD_VIOLATIONS)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        outside = await offline(page, server.url)
        response = await page.goto(server.url + "/redoc")
        assert response is not None and response.status == 200
        await page.wait_for_selector("li[data-item-id]", timeout=60_000)
        heading = page.locator("h2", has_text="Create a checkout session").first
        await heading.wait_for(state="attached", timeout=30_000)
        violations = await page.evaluate("window.__csp")
    finally:
        await context.close()
    assert errors == [] and outside == []
    # ReDoc's bundle injects perfect-scrollbar's <style> as it loads (before it can know the
    # nonce; unused: native scrollbars) and shows the Redocly logo from its CDN: the CSP blocks
    # both, nothing else.
    unexpected = [
        v
        for v in violations
        if not (v[0] == "style-src-elem" and v[2].startswith("<style>.ps{"))
        and not (v[0] == "img-src" and v[1].startswith("https://cdn.redoc.ly/"))
    ]
    assert unexpected == [], violations
