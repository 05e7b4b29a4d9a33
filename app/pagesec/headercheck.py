"""The page check (PCI DSS 11.6.1): our payment pages as the shopper's browser receives them,
fetched through PUBLIC_BASE_URL (so a proxy or CDN in front of us is in the path), their
security-impacting headers compared with what app/security_headers.py says they must be and
their `<script src>` list with the inventory's scripts for that page.

Which pages: the card page's URL for a checkout session that does not exist. It answers our
error page (404) with the very same headers as every payment page (the one `page_headers`
rule), needs no session, writes nothing and tells the shop nothing: the least intrusive
probe. Its script list must be a subset of the card page's inventory (an injected
script is drift); the card form's own scripts come from the same template, and the CSP lets
no other origin's script run.

A drift alerts once (when the page's last check was not already drift): `rp_page_drifts_total
{page}`, an ERROR log line, the console's needs-attention tile until a check is clean again.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.metrics import PAGE_CHECKS, PAGE_DRIFTS
from app.pagesec.inventory import PageKind, inventory
from app.pagesec.models import PageCheck
from app.pagesec.watcher import FetchFailed, PageResult
from app.security_headers import page_headers

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
# A checkout session id no session has (ids are cs_ + 32 hex digits).
PROBE_SESSION = "cs_pagesec_probe"
MAX_PAGE_BYTES = 1_000_000
_NONCE = re.compile(r"'nonce-[^']*'")
_MAX_AGE = re.compile(r"max-age\s*=\s*\"?(\d+)")


def probe_pages() -> list[tuple[PageKind, str]]:
    """(page kind, path) of each page the check fetches."""
    return [("checkout", f"/checkout/{PROBE_SESSION}?lang=ja")]


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


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.inline = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            src = dict(attrs).get("src")
            if src:
                self.srcs.append(src)
            else:
                self.inline += 1


def page_scripts(html: str) -> tuple[list[str], int]:
    """The page's `<script src>` values, and how many inline scripts it has."""
    parser = _Scripts()
    parser.feed(html)
    return parser.srcs, parser.inline


def compare_scripts(srcs: list[str], allowed: set[str], page_url: str) -> list[str]:
    """Scripts the page loads that the inventory does not list for it."""
    wanted = {urljoin(page_url, url) for url in allowed}
    return [
        f"script not in the inventory: {src}"
        for src in srcs
        if urljoin(page_url, src) not in wanted
    ]


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
        problems = compare_headers(headers, page_headers(settings), https=https)
        srcs, _inline = page_scripts(html)
        allowed = {s.url for s in inventory(settings) if page in s.pages}
        problems += compare_scripts(srcs, allowed, url)
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
    return [await check_page(sessions, http, settings, kind, path) for kind, path in probe_pages()]
