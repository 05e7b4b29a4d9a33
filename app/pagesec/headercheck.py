"""The page check (PCI DSS 11.6.1): our payment pages as the shopper's browser receives them,
fetched through PUBLIC_BASE_URL (so a proxy or CDN in front of us is in the path), their
security-impacting headers compared with what they must be (app/security_headers.py with the
page's CSP from app/pagesec/csp.py) and their `<script>` tags with the inventory's scripts for
that page: the same list, in the same order, each with its SRI `integrity` where the inventory
has one, and no inline script.

Which page: the real checkout card page, rendered for an order that exists nowhere
(app/pagesec/probe.py: a signed, short-lived probe URL), so the check writes no session and
tells the shop nothing. While the watcher's fallback takes the card form away (SBPS), the
page must run no script at all, and that is what is compared.

A drift alerts once (when the page's last check was not already drift): `rp_page_drifts_total
{page}`, an ERROR log line, the console's needs-attention tile until a check is clean again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.metrics import PAGE_CHECKS, PAGE_DRIFTS
from app.pagesec import csp, probe
from app.pagesec.inventory import PageKind
from app.pagesec.models import PageCheck
from app.pagesec.service import page_fallback
from app.pagesec.watcher import FetchFailed, PageResult
from app.web import PageScripts

log = logging.getLogger(__name__)

# The headers 11.6.1 is about, as our pages must carry them.
CHECKED = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "X-Frame-Options",
)
HSTS = "Strict-Transport-Security"
# A year: what a TLS-terminating proxy in front of us must send on https.
HSTS_MIN_AGE = 31_536_000
MAX_PAGE_BYTES = 1_000_000
_NONCE = re.compile(r"'nonce-[^']*'")
_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)")


def probe_pages(settings: Settings) -> list[tuple[PageKind, str]]:
    """(page kind, path) of each page the check fetches (fresh probe tokens)."""
    return [("checkout", probe.path(settings))]


def csp_directives(value: str) -> dict[str, tuple[str, ...]]:
    """A CSP as directive -> sorted sources, nonces blanked (they differ on every answer)."""
    found: dict[str, tuple[str, ...]] = {}
    for part in value.split(";"):
        words = _NONCE.sub("'nonce-*'", part).split()
        if words:
            found.setdefault(words[0].lower(), tuple(sorted(words[1:])))
    return found


def compare_headers(
    got: Mapping[str, str], expected: Mapping[str, str], *, https: bool
) -> list[str]:
    """What differs, one readable line each (empty: as required)."""
    lowered = {k.lower(): v for k, v in got.items()}
    problems: list[str] = []
    for name in CHECKED:
        want = expected.get(name)
        if want is None:
            continue
        have = lowered.get(name.lower())
        if have is None:
            problems.append(f"{name}: missing")
            continue
        if name == "Content-Security-Policy":
            # Several policies (several headers, which arrive comma-joined) all apply.
            policies = have.split(",")
            if len(policies) != 1:
                problems.append(f"{name}: {len(policies)} policies (must be 1)")
            have_d, want_d = csp_directives(policies[0]), csp_directives(want)
            for directive in sorted(set(have_d) | set(want_d)):
                if have_d.get(directive) != want_d.get(directive):
                    shown = " ".join(have_d[directive]) if directive in have_d else "missing"
                    problems.append(f"{name}: {directive} is {shown!r}")
        elif have.strip().lower() != want.strip().lower():
            problems.append(f"{name}: {have!r} (must be {want!r})")
    if https:
        hsts = lowered.get(HSTS.lower())
        age = _MAX_AGE.search(hsts or "")
        if hsts is None:
            problems.append(f"{HSTS}: missing")
        elif age is None or int(age.group(1)) < HSTS_MIN_AGE:
            problems.append(f"{HSTS}: {hsts!r} (max-age must be at least {HSTS_MIN_AGE})")
    return problems


@dataclass(frozen=True)
class Script:
    src: str | None  # None: inline
    integrity: str | None
    nonce: str | None


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[Script] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            a = dict(attrs)
            self.found.append(Script(a.get("src") or None, a.get("integrity"), a.get("nonce")))


def page_scripts(html: str) -> list[Script]:
    """The page's `<script>` tags, in order."""
    parser = _Scripts()
    parser.feed(html)
    return parser.found


def compare_scripts(found: list[Script], expected: PageScripts, page_url: str) -> list[str]:
    """How the page's scripts differ from the inventory's tags for it (empty: the same)."""
    problems: list[str] = []
    want = [(urljoin(page_url, t.src), t.integrity) for t in expected.tags]
    have = [(urljoin(page_url, s.src), s.integrity) for s in found if s.src]
    wanted = {url for url, _ in want}
    problems += [f"script not in the inventory: {url}" for url, _ in have if url not in wanted]
    present = {url for url, _ in have}
    problems += [f"script missing: {url}" for url, _ in want if url not in present]
    sri = dict(have)
    problems += [
        f"script without its integrity hash: {url}"
        for url, integrity in want
        if integrity and url in present and sri.get(url) != integrity
    ]
    if not problems and [u for u, _ in have] != [u for u, _ in want]:
        problems.append("scripts in another order than the inventory's")
    # The inventory has no inline script: one is drift, nonce or not (a nonce only says the
    # server wrote it, and a tampered template is the server).
    if inline := sum(1 for s in found if not s.src):
        problems.append(f"inline script not in the inventory ({inline})")
    return problems


async def _fetch(http: httpx.AsyncClient, url: str) -> tuple[dict[str, str], str]:
    try:
        async with http.stream("GET", url, headers={"Accept": "text/html"}) as answer:
            body = b""
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > MAX_PAGE_BYTES:
                    break
            if not answer.headers.get("content-type", "").startswith("text/html"):
                raise FetchFailed(f"HTTP {answer.status_code}, not an HTML page")
            if answer.status_code == 404:
                # Our 404 page: the probe token was refused (probe.py), or the page is gone.
                raise FetchFailed(
                    "HTTP 404: the probe page was refused (the server and this check must "
                    "share WEBHOOK_SECRET_KEY and a clock within 5 minutes)"
                )
            if answer.status_code != 200:
                raise FetchFailed(f"HTTP {answer.status_code}, not the card page")
            return dict(answer.headers.items()), body.decode("utf-8", "replace")
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}"[:300]) from None


async def _drifting(session: AsyncSession, page: str) -> bool:
    """Whether the page's last check found drift (a new drift alerts, a lasting one not)."""
    stmt = (
        select(PageCheck.status)
        .where(PageCheck.page == page)
        .order_by(PageCheck.checked_at.desc(), PageCheck.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none() == "drift"


async def check_page(
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    settings: Settings,
    page: PageKind,
    path: str,
) -> PageResult:
    url = settings.public_base_url.rstrip("/") + path
    problems: list[str] = []
    error: str | None = None
    try:
        headers, html = await _fetch(http, url)
    except FetchFailed as exc:
        error = str(exc)
    else:
        https = url.startswith("https://")
        none = await page_fallback(sessions, settings) == "unavailable"
        expected = csp.page_scripts(settings, page, none=none)
        problems = compare_headers(headers, expected.headers, https=https)
        problems += compare_scripts(page_scripts(html), expected, url)
    status = "fetch_failed" if error else ("drift" if problems else "ok")
    async with sessions() as session:
        new = status == "drift" and not await _drifting(session, page)
        session.add(
            PageCheck(
                page=page,
                url=url,
                checked_at=utcnow(),
                status=status,
                problems=problems,
                error=error,
            )
        )
        await session.commit()
    PAGE_CHECKS.labels(page, status).inc()
    if new:
        PAGE_DRIFTS.labels(page).inc()
        log.error(
            "page check: %s (%s) differs from what it must be: %s",
            page,
            url,
            "; ".join(problems),
            extra={"event": "page_drift", "page": page},
        )
    elif error:
        log.warning("page check: %s (%s) could not be fetched: %s", page, url, error)
    return PageResult(page, url, status, tuple(problems), error, alerted=new)


def page_client(settings: Settings) -> httpx.AsyncClient:
    """How the check fetches our pages: as a browser, straight (not the gateway's egress
    proxy), no redirects followed, nothing from the environment."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            settings.gateway_read_timeout, connect=settings.gateway_connect_timeout
        ),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": "rp-merchant-pagecheck/1"},
    )


async def check_pages(
    sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings
) -> list[PageResult]:
    return [
        await check_page(sessions, http, settings, kind, path)
        for kind, path in probe_pages(settings)
    ]
