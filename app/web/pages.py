"""Rendering our HTML pages: templates, their security headers, language, error pages and the
cross-site refusal of their form posts. Knows no domain: callers pass what a page shows."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import Settings
from app.security_headers import page_headers
from app.web.i18n import messages

log = logging.getLogger(__name__)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def lang_of(request: Request) -> str:
    """The page language from `?lang=`: Japanese unless English is asked for."""
    return "en" if request.query_params.get("lang") == "en" else "ja"


def form_lang(form: Any) -> str:
    """The language a page's form post carries (its hidden `lang` field)."""
    return "en" if form.get("lang") == "en" else "ja"


def render(settings: Settings, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=page_headers(settings))


def error_page(
    settings: Settings, lang: str, status_code: int, message: str, back_url: str | None = None
) -> HTMLResponse:
    t = messages(lang)
    titles = {
        404: t.get("error_not_found_title", "Not found"),
        409: t.get("error_conflict_title", "Already paid"),
        410: t.get("error_expired_title", "Expired"),
        403: t.get("error_forbidden_title", "Forbidden"),
        422: t.get("error_invalid_title", "Invalid request"),
        429: t.get("error_too_many_title", "Too many attempts"),
        503: t.get("error_unavailable_title", "Unavailable"),
    }
    return render(
        settings,
        "error.html",
        status_code=status_code,
        lang=lang,
        t=t,
        http_status=status_code,
        title=titles.get(status_code, "Error"),
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


def html_error_page(request: Request, status_code: int, message: str) -> HTMLResponse:
    """The error page for errors no route handled (app/errors.py `install_error_handlers`)."""
    return error_page(request.app.state.settings, lang_of(request), status_code, message)


def card_result_page(
    settings: Settings,
    lang: str,
    t: dict[str, str],
    *,
    status: str,
    message: str,
    redirect_url: str | None,
    retry_url: str | None,
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
