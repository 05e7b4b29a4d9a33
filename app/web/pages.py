"""Rendering our HTML pages: templates, their security headers, language, error pages and the
cross-site refusal of their form posts. Knows no domain: callers pass what a page shows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import Settings
from app.security_headers import page_headers
from app.web.cards import ACCEPTED_BRANDS, card_brand, card_label
from app.web.i18n import messages
from app.web.theme import branding

log = logging.getLogger(__name__)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)
# Shoppers read times in Japan's time (UTC+9, no daylight saving).
JST = timezone(timedelta(hours=9), "JST")


def _jst(value: datetime) -> str:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(JST).strftime("%Y-%m-%d %H:%M")


_templates.filters["jst"] = _jst
_templates.filters["card_label"] = card_label
_templates.filters["card_brand"] = card_brand
_templates.globals["accepted_brands"] = ACCEPTED_BRANDS


# The language a shopper chose with a page's switch, remembered by their browser.
LANG_COOKIE = "rp_lang"


def lang_of(request: Request) -> str:
    """The page language: `?lang=` (the page's switch, kept in its links and forms), else the
    one this browser chose before (`rp_lang`), else the browser's Accept-Language (the first
    of ja/en it prefers), else Japanese."""
    asked = request.query_params.get("lang")
    if asked in ("ja", "en"):
        return asked
    kept = request.cookies.get(LANG_COOKIE)
    if kept in ("ja", "en"):
        return kept
    return preferred_lang(request.headers.get("accept-language", ""))


def keep_lang(request: Request, response: Response, settings: Settings) -> None:
    """A page opened with `?lang=` has its browser remember the choice, so the switch
    persists: the session's link reopened later (from the shop's e-mail) keeps it."""
    asked = request.query_params.get("lang")
    if asked in ("ja", "en") and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(
            LANG_COOKIE,
            asked,
            max_age=365 * 24 * 3600,
            secure=settings.public_base_url.startswith("https://"),
            httponly=True,  # no script reads it
            samesite="lax",
        )


def preferred_lang(header: str) -> str:
    """The page language an Accept-Language header prefers: for "en-US,en;q=0.9,ja;q=0.8"
    English. Japanese wins ties and anything unreadable."""
    best, best_q = "ja", -1.0
    for item in header.split(",")[:20]:
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("ja", "en"):
            continue
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                continue
        if q > best_q or (q == best_q and primary == "ja"):
            best, best_q = primary, q
    return best if best_q > 0 else "ja"


def form_lang(form: Any) -> str:
    """The language a page's form post carries (its hidden `lang` field)."""
    return "en" if form.get("lang") == "en" else "ja"


@dataclass(frozen=True, slots=True)
class ScriptTag:
    """One `<script>` of a page: `integrity` ("sha384-...") pins our own files' bytes;
    `crossorigin` is needed for SRI on a file from another origin."""

    src: str
    integrity: str | None = None
    crossorigin: bool = False


@dataclass(frozen=True, slots=True)
class PageScripts:
    """A page's scripts and the headers that let exactly them run: built per request by
    app/pagesec/csp.py from the script inventory (every tag carries `nonce`)."""

    nonce: str
    tags: tuple[ScriptTag, ...]
    headers: dict[str, str]


def render(
    settings: Settings,
    name: str,
    status_code: int = 200,
    *,
    scripts: PageScripts | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page `name` with `context`, and `shop` (the merchant's name, logo and theme from
    the settings: app/web/theme.py) for the layout. With SBPS, the footer names SBPS.
    `scripts`: the page's script tags and headers (a payment page's); None = no script, the
    generic page headers."""
    context.setdefault("shop", branding(settings))
    context["page_scripts"] = scripts
    t = context.get("t")
    if settings.gateway_provider == "sbps" and isinstance(t, dict) and "secure_note_sbps" in t:
        # Every page's footer names the gateway the card actually goes to.
        context["t"] = {**t, "secure_note": t["secure_note_sbps"]}
    html = _templates.get_template(name).render(**context)
    headers = scripts.headers if scripts is not None else page_headers(settings)
    return HTMLResponse(html, status_code=status_code, headers=headers)


class Problem(Protocol):
    """What a page needs of an app.errors.AppError (named structurally: the simulator's demo
    shop uses this package and must not import app.errors, which knows the gateway)."""

    code: str | None
    detail: str | None
    texts: dict[str, str]


def problem_text(lang: str, exc: Problem) -> str | None:
    """What a shopper's page says of a problem, in the page's language: the text for its code,
    else the gateway's own message for a gateway error, else (English pages only) its detail;
    None = the standard text for its status. API details are English and name API things: a
    Japanese page never shows them."""
    if exc.code and (text := messages(lang).get(f"problem_{exc.code}")):
        return text
    if text := exc.texts.get(lang):
        return text
    return exc.detail if lang == "en" and exc.detail else None


def error_page(
    settings: Settings,
    lang: str,
    status_code: int,
    message: str | None = None,
    back_url: str | None = None,
) -> HTMLResponse:
    """`message`: text in `lang` (None: the standard text for the status)."""
    return render(
        settings,
        "error.html",
        status_code=status_code,
        lang=lang,
        t=messages(lang),
        http_status=status_code,
        title=None,
        message=message,
        back_url=back_url,
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_refusal(request: Request, settings: Settings) -> HTMLResponse | None:
    """A 403 page when another site made the shopper's browser post this form (defence in
    depth: the session id is the capability): `Sec-Fetch-Site: cross-site`, or an Origin that
    is not ours. Posts without these headers (old browsers, curl) go on."""
    origin = request.headers.get("origin")
    foreign = origin is not None and origin.lower() != _origin(settings.public_base_url)
    if request.headers.get("sec-fetch-site") != "cross-site" and not foreign:
        return None
    lang = lang_of(request)
    log.warning("refused a cross-site form post to %s (origin %s)", request.url.path, origin)
    return error_page(settings, lang, 403, messages(lang)["error_cross_site"])


def html_error_page(
    request: Request, status_code: int, message: str, code: str | None = None
) -> HTMLResponse:
    """The error page for errors no route handled (app/errors.py `install_error_handlers`):
    the text for the problem's code in the page's language, else the English message on an
    English page, else the status's standard text."""
    lang = lang_of(request)
    shown = messages(lang).get(f"problem_{code}") if code else None
    if shown is None and lang == "en":
        shown = message
    return error_page(request.app.state.settings, lang, status_code, shown)


def card_result_page(
    settings: Settings,
    lang: str,
    t: dict[str, str],
    *,
    status: str,
    message: str,
    redirect_url: str | None,
    retry_url: str | None,
    scripts: PageScripts,
    status_code: int = 200,
) -> HTMLResponse:
    """The result page of a card page (a registration, no payment), worded for one: `t` is
    the page's texts, its result titles replaced by the registration's."""
    t = {
        **t,
        "result_title_succeeded": t["register_done_title"],
        "result_title_failed": t["register_failed_title"],
    }
    return render(
        settings,
        "result.html",
        status_code=status_code,
        scripts=scripts,
        lang=lang,
        t=t,
        status=status,
        message=message,
        payment_id=None,
        amount_total=None,
        redirect_url=redirect_url,
        status_url=None,
        retry_url=retry_url,
    )
