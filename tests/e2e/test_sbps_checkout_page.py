"""The checkout page with GATEWAY_PROVIDER=sbps in a real Chromium against a real uvicorn: the
in-process SBPS simulator (/sandbox-sbps) serves com_sbps_system_token.js and makes the token;
the page posts only the token and its key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from app.sandbox.sbps.cards import (
    CARD_3DS_CHALLENGE,
    CARD_DECLINE_G12,
    CARD_OK,
    CHALLENGE_CODE,
)
from tests.e2e.conftest import ARTIFACTS, Server, _server, create_session
from tests.e2e.test_checkout_page import fill_card, payment_of, record_posts


@pytest.fixture(scope="module")
async def sbps_server(e2e_db: str, server_logs: Path) -> AsyncIterator[Server]:
    async for s in _server(e2e_db, server_logs, "sbps", GATEWAY_PROVIDER="sbps"):
        yield s


@pytest.fixture
async def sbps_sim(sbps_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{sbps_server.url}/sandbox-sbps/") as client:
        yield client


async def ledger(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await sim.get("_sandbox/ledger")).json()
    return rows


async def test_sbps_card_payment_reaches_the_result_page(
    sbps_server: Server, sbps_sim: httpx.AsyncClient, page: Page
) -> None:
    cs = await create_session(sbps_server)
    await page.goto(cs["url"])
    await expect(page.locator("#total-amount")).to_contain_text("1,580")
    await expect(page.locator("#form-alert")).to_have_text("")
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await fill_card(page, CARD_OK)
    await page.screenshot(path=str(ARTIFACTS / "sbps-checkout.png"), full_page=True)
    await page.click("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    # Post/redirect/get: the browser is on the payment's own page.
    assert re.search(rf"/checkout/{cs['id']}/payments/[^/?]+", page.url), page.url
    # Only the token and its key left the page for our server: no card field.
    assert len(posts) == 1
    assert "tkn=" in posts[0] and "tkn_key=" in posts[0]
    assert CARD_OK not in posts[0] and "cvv" not in posts[0] and "cn=" not in posts[0]
    p = await payment_of(sbps_server, cs["id"])
    assert p is not None and p["status"] == "authorized"
    assert len([r for r in await ledger(sbps_sim) if r["approved"]]) == 1


async def test_sbps_decline_shows_a_readable_message(
    sbps_server: Server, sbps_sim: httpx.AsyncClient, page: Page
) -> None:
    cs = await create_session(sbps_server)
    await page.goto(cs["url"])
    await fill_card(page, CARD_DECLINE_G12)
    await page.click("#purchase")
    failed = page.locator('#result[data-status="failed"]')
    await expect(failed).to_be_visible(timeout=15000)
    await expect(failed).to_contain_text("カード")
    await page.screenshot(path=str(ARTIFACTS / "sbps-declined.png"), full_page=True)
    p = await payment_of(sbps_server, cs["id"])
    assert p is not None and p["status"] == "failed"


async def test_sbps_token_error_code_is_readable_and_nothing_is_posted(
    sbps_server: Server, page: Page
) -> None:
    cs = await create_session(sbps_server)
    await page.goto(cs["url"])
    posts = record_posts(page, f"/checkout/{cs['id']}")
    # The token script answers NG 05003 (card number length), as SBPS's would.
    await page.evaluate(
        "() => { window.com_sbps_system.generateToken = function (req, cb) {"
        " cb({result: 'NG', errorCode: '05003'}); }; }"
    )
    await fill_card(page, CARD_OK)
    await page.click("#purchase")
    await expect(page.locator("#form-alert")).to_contain_text("カード番号の桁数が正しくありません")
    assert posts == []
    await expect(page.locator("#purchase")).to_be_enabled()


async def test_sbps_three_ds_challenge_passed_lands_authorized(
    sbps_server: Server, sbps_sim: httpx.AsyncClient, page: Page
) -> None:
    """The page makes both tokens; our result page sends the browser to the simulator's 3-D
    Secure page (three_ds.js); the shopper passes the challenge and comes back to our return
    URL, whose one authorization call decides the payment."""
    cs = await create_session(sbps_server)
    await page.goto(cs["url"])
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await fill_card(page, CARD_3DS_CHALLENGE)
    await page.click("#purchase")
    await expect(page.locator("#code")).to_be_visible(timeout=15000)
    assert "/sandbox-sbps/tds2/authenticate/" in page.url
    assert len(posts) == 1 and "tds_tkn=" in posts[0] and "tds_tkn_key=" in posts[0]
    assert CARD_3DS_CHALLENGE not in posts[0]
    await page.screenshot(path=str(ARTIFACTS / "sbps-3ds-challenge.png"), full_page=True)
    await page.fill("#code", CHALLENGE_CODE)
    await page.click('button[value="complete"]')
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert re.search(rf"/checkout/{cs['id']}/payments/[^/?]+", page.url), page.url
    p = await payment_of(sbps_server, cs["id"])
    assert p is not None and p["status"] == "authorized"
    rows = [r for r in await ledger(sbps_sim) if r["order_id"] == p["cod"]]
    assert [r["approved"] for r in rows] == [True]


async def test_sbps_three_ds_challenge_failed_is_a_readable_decline(
    sbps_server: Server, sbps_sim: httpx.AsyncClient, page: Page
) -> None:
    cs = await create_session(sbps_server)
    await page.goto(cs["url"])
    await fill_card(page, CARD_3DS_CHALLENGE)
    await page.click("#purchase")
    await expect(page.locator("#code")).to_be_visible(timeout=15000)
    await page.fill("#code", "0000")  # the wrong one-time code
    await page.click('button[value="complete"]')
    failed = page.locator('#result[data-status="failed"]')
    await expect(failed).to_be_visible(timeout=15000)
    await expect(failed).to_contain_text("本人認証")
    await page.screenshot(path=str(ARTIFACTS / "sbps-3ds-failed.png"), full_page=True)
    p = await payment_of(sbps_server, cs["id"])
    assert p is not None and p["status"] == "failed"
    assert [r for r in await ledger(sbps_sim) if r["order_id"] == p["cod"]] == []


async def test_sbps_three_ds_double_click_makes_one_payment(
    sbps_server: Server, sbps_sim: httpx.AsyncClient, page: Page
) -> None:
    cs = await create_session(sbps_server, order_id="e2esbpsdouble")
    await page.goto(cs["url"])
    posts = record_posts(page, f"/checkout/{cs['id']}")
    await fill_card(page, CARD_OK)
    await page.dblclick("#purchase")
    await expect(page.locator('#result[data-status="succeeded"]')).to_be_visible(timeout=15000)
    assert len(posts) == 1
    rows = [r for r in await ledger(sbps_sim) if r["order_id"] == "e2esbpsdouble"]
    assert [r["approved"] for r in rows] == [True]
