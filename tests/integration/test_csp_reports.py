"""The CSP report collector (`POST /csp-reports`) over real HTTP: both shapes browsers send,
deduplicated and counted, bounded (413), rate limited per client (429), hostile shapes
refused (400), nothing secret kept (query strings, card numbers), and shown in the console."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.pagesec.models import CspReport
from tests.integration.test_ops_console import sign_in
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration

LEGACY = {"Content-Type": "application/csp-report"}
REPORTS = {"Content-Type": "application/reports+json"}


def legacy(blocked: str, page: str = "", directive: str = "script-src-elem") -> bytes:
    report = {
        "csp-report": {
            "document-uri": page or "http://127.0.0.1/checkout/cs_0123456789abcdef?lang=en",
            "blocked-uri": blocked,
            "effective-directive": directive,
            "violated-directive": directive,
            "original-policy": "default-src 'none'",
            "disposition": "enforce",
        }
    }
    return json.dumps(report).encode()


def reporting(blocked: str, directive: str = "script-src-elem") -> bytes:
    item = {
        "type": "csp-violation",
        "age": 10,
        "url": "http://127.0.0.1/checkout/cs_0123456789abcdef",
        "user_agent": "Chromium",
        "body": {
            "documentURL": "http://127.0.0.1/checkout/cs_0123456789abcdef#frag",
            "blockedURL": blocked,
            "effectiveDirective": directive,
            "disposition": "enforce",
            "statusCode": 200,
        },
    }
    return json.dumps([item, {"type": "deprecation", "body": {"id": "x"}}]).encode()


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[CspReport]:
    async with sessions() as session:
        return list((await session.scalars(select(CspReport).order_by(CspReport.id))).all())


async def metric(app: RunningApp, directive: str) -> float:
    body = (await app.client.get("/metrics")).text
    found = re.search(rf'^rp_csp_reports_total{{directive="{directive}"}} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


async def post(app: RunningApp, body: bytes, headers: dict[str, str], **kw: Any) -> Any:
    return await app.client.post("/csp-reports", content=body, headers=headers, **kw)


async def test_both_shapes_are_stored_once_and_counted(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    before = await metric(app, "script-src-elem")
    evil = "https://evil.example/x.js?session=abc#t"
    for body, headers in ((legacy(evil), LEGACY), (reporting(evil), REPORTS)) * 2:
        r = await post(app, body, headers)
        assert r.status_code == 204, r.text
        assert r.content == b""
    (row,) = await rows(sessions)
    assert row.count == 4 and row.directive == "script-src-elem"
    assert row.blocked_uri == "https://evil.example/x.js"
    assert row.page == "http://127.0.0.1/checkout/{id}", "no query, no fragment, no session id"
    assert row.first_seen <= row.last_seen
    assert await metric(app, "script-src-elem") == before + 4
    # An inline script (no URL) is its own row; an unknown directive is "other".
    assert (await post(app, legacy("inline"), LEGACY)).status_code == 204
    assert (await post(app, legacy("eval", directive="made-up-src"), LEGACY)).status_code == 204
    kept = {(r.directive, r.blocked_uri) for r in await rows(sessions)}
    assert ("script-src-elem", "inline") in kept and ("other", "eval") in kept


async def test_card_data_and_tokens_in_a_report_are_not_stored(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    blocked = "https://evil.example/4111111111111111/steal?cn=4111111111111111&tkn=tok_secret"
    page = "http://127.0.0.1/checkout/cs_x?cn=4111%201111%201111%201111"
    r = await post(app, legacy(blocked, page=page), LEGACY)
    assert r.status_code == 204
    r = await post(app, legacy("https://evil.example/4111-1111-1111-1111.js"), LEGACY)
    assert r.status_code == 204
    stored = " ".join(f"{r.blocked_uri} {r.page}" for r in await rows(sessions))
    digits = re.sub(r"\D", "", stored)
    assert "4111111111111111" not in digits and "tok_secret" not in stored, stored
    assert "cn=" not in stored and "steal" in stored


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not json", LEGACY, 400),
        (b'{"csp-report": "x"}', LEGACY, 400),
        (b'{"csp-report": {"blocked-uri": "x"}}', LEGACY, 400),  # no document-uri
        (b"[]", REPORTS, 400),
        (b'{"type": "csp-violation"}', REPORTS, 400),  # not a list
        (b'[{"type": "csp-violation", "body": {"documentURL": 5}}]', REPORTS, 400),
        (b'[{"type": "csp-violation"}]', REPORTS, 400),  # no body
        (b'{"csp-report": {"document-uri": "x"}}', {"Content-Type": "text/plain"}, 415),
        (b"\xff\xfe", REPORTS, 400),
    ],
)
async def test_other_shapes_are_refused_as_problems(
    make_app: AppFactory, body: bytes, headers: dict[str, str], status: int
) -> None:
    app = await make_app()
    r = await post(app, body, headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status and problem["title"]
    if status == 400 and body.startswith((b"{", b"[")) and body != b"[]":
        assert problem["errors"][0]["field"] and problem["errors"][0]["message"], problem


async def test_a_body_over_16_kib_is_413_and_not_stored(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    big = legacy("https://evil.example/" + "a" * 17 * 1024)
    r = await post(app, big, LEGACY)
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"

    async def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(40):
            yield b" " * 1024

    r = await app.client.post("/csp-reports", content=chunks(), headers=LEGACY)
    assert r.status_code == 413
    assert await rows(sessions) == []
    # Just under the cap is fine.
    r = await post(app, legacy("https://evil.example/" + "a" * 15 * 1024), LEGACY)
    assert r.status_code == 204


async def test_a_flooding_client_is_rate_limited_and_others_are_not(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(csp_reports_per_client_per_minute=5, csp_reports_per_minute=100)
    flood = {**LEGACY, "X-Forwarded-For": "203.0.113.50"}
    codes = [(await post(app, legacy("inline"), flood)).status_code for _ in range(8)]
    assert codes == [204] * 5 + [429] * 3, codes
    refused = await post(app, legacy("inline"), flood)
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    other = await post(app, legacy("inline"), {**LEGACY, "X-Forwarded-For": "198.51.100.7"})
    assert other.status_code == 204
    (row,) = await rows(sessions)
    assert row.count == 6


async def test_the_console_lists_the_reports_and_the_home_shows_a_tile(
    make_app: AppFactory,
) -> None:
    app = await make_app()
    await sign_in(app)
    home = await app.client.get("/ops")
    assert 'id="tile-csp-reports"' not in home.text, "no tile without reports"
    empty = await app.client.get("/ops/csp-reports")
    assert empty.status_code == 200 and "CSP 違反の報告はありません" in empty.text
    await post(app, legacy("https://evil.example/x.js?a=1"), LEGACY)
    await post(app, legacy("https://evil.example/x.js?a=2"), LEGACY)
    await post(app, legacy("inline"), LEGACY)
    page = await app.client.get("/ops/csp-reports")
    assert page.status_code == 200 and page.text.count("data-report=") == 2
    assert "https://evil.example/x.js" in page.text and "a=1" not in page.text
    assert page.text.index("inline") < page.text.index("evil.example"), "newest first"
    assert "csp-reports" in page.text and "CSP 違反" in page.text
    english = await app.client.get("/ops/csp-reports", params={"lang": "en"})
    assert "CSP violation reports of the payment pages" in english.text
    home = await app.client.get("/ops", params={"lang": "ja"})
    assert 'id="tile-csp-reports"' in home.text and "/ops/csp-reports" in home.text
