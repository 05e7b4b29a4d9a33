"""The payment pages' Content-Security-Policy, built per request from the script inventory.

- script-src: a fresh nonce (every tag we render carries it) plus exactly the inventory's URLs
  for that page (path-specific sources: another file on the same host does not match). No
  'self', no 'unsafe-inline', no 'strict-dynamic': with 'strict-dynamic' a nonced script could
  load any script at all and the URL list would be ignored, so what may run would no longer be
  the inventory. A script the gateway's code inserts must be in the inventory too (else it is
  blocked and reported: the alert 11.6.1 asks for).
- frame-src on the ROBOT PAYMENT card pages: 'self', the gateway, and `https:`. EMV 3-D Secure
  shows the issuer's ACS challenge in an iframe, and the ACS is the cardholder's issuer's (or
  its processor's) server: any bank's origin, not a list anyone can write down. `https:` is
  therefore as narrow as 3-D Secure allows (the protocol requires TLS); what runs inside that
  frame is the issuer's, outside 6.4.3's scope, and cannot touch our page (other origin).
  SBPS's 3-D Secure is a redirect, not a frame (the shopper goes to SBPS's page), and the
  result pages show no frame: they keep theirs narrow.
- Reports go to our own collector `POST /csp-reports` (app/pagesec/router.py), as HTTP headers
  (neither works in a <meta>): `report-uri /csp-reports` always (Firefox, Safari; resolved
  against the page's own URL, so never cross-origin), and, when PUBLIC_BASE_URL is https,
  `report-to csp` with `Reporting-Endpoints: csp="<PUBLIC_BASE_URL>/csp-reports"` (Chromium).
  Only then: Chromium ignores report-uri once report-to is present, and it delivers Reporting
  API reports to secure endpoints only, so over plain http (a developer's machine, the e2e
  tests) report-to would silence every report."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from app.config import Settings
from app.pagesec.inventory import InventoryScript, PageKind, scripts_for
from app.security_headers import page_headers
from app.web import PageScripts, ScriptTag

REPORT_PATH = "/csp-reports"
REPORT_GROUP = "csp"
# Characters that would end a CSP source or directive: such a URL is listed by its origin.
_NOT_IN_SOURCE = frozenset(" \t\r\n;,'\"")


def new_nonce() -> str:
    """128 bits from the OS's CSPRNG, base64url (a valid CSP nonce: no quotes or spaces)."""
    return secrets.token_urlsafe(16)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _source(settings: Settings, url: str) -> str:
    """The CSP source that matches exactly the script at `url` (our own paths are made
    absolute with PUBLIC_BASE_URL, the origin the shopper's browser sees)."""
    if url.startswith("/") and not url.startswith("//"):
        url = _origin(settings.public_base_url) + url
    if any(ch in _NOT_IN_SOURCE for ch in url):
        return _origin(url)
    return url


def _tag(script: InventoryScript) -> ScriptTag:
    cross = script.sri is not None and not script.url.startswith("/")
    return ScriptTag(src=script.url, integrity=script.sri, crossorigin=cross)


def _secure(settings: Settings) -> bool:
    """Whether browsers deliver Reporting API reports to us (an https origin)."""
    return settings.public_base_url.startswith("https://")


def report_endpoint(settings: Settings) -> str:
    """Where Reporting-Endpoints sends reports: our collector, absolute."""
    return _origin(settings.public_base_url) + REPORT_PATH


def policy(settings: Settings, page: PageKind, nonce: str, *, none: bool = False) -> str:
    """The CSP of payment page `page` whose script tags carry `nonce`; `none`: the page runs
    no script at all (a card page while the watcher's fallback takes its form away)."""
    scripts = () if none else scripts_for(settings, page)
    sources = " ".join(dict.fromkeys(_source(settings, s.url) for s in scripts))
    gw = settings.page_script_base
    gw_origin = "" if gw.startswith("/") else _origin(gw)
    gateway = f"'self' {gw_origin}".strip()
    img = f"'self' data: {settings.shop_logo_origin}".strip()
    if page in ("result", "tds_redirect"):
        frames = "'none'"
    elif settings.gateway_provider == "sbps":
        frames = gateway
    else:
        frames = f"{gateway} https:"  # the issuers' ACS challenge frames: see the docstring
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}' {sources}; connect-src {gateway}; "
        f"style-src 'self'; img-src {img}; font-src 'self'; frame-src {frames}; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; "
        f"report-uri {REPORT_PATH}" + (f"; report-to {REPORT_GROUP}" if _secure(settings) else "")
    )


def page_scripts(settings: Settings, page: PageKind, *, none: bool = False) -> PageScripts:
    """What `render` needs for payment page `page`: its tags from the inventory, a new nonce
    and the headers (the pages' usual ones with this CSP and its report endpoint); `none`:
    no script at all (see `policy`)."""
    nonce = new_nonce()
    csp = policy(settings, page, nonce, none=none)
    headers = {**page_headers(settings), "Content-Security-Policy": csp}
    if _secure(settings):
        headers["Reporting-Endpoints"] = f'{REPORT_GROUP}="{report_endpoint(settings)}"'

    tags = () if none else tuple(_tag(s) for s in scripts_for(settings, page))
    return PageScripts(nonce=nonce, tags=tags, headers=headers)
