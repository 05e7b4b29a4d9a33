"""The page machinery every HTML page uses (checkout payment page, customer and billing card
pages, error pages): Jinja templates, render(), error pages, the pages' security headers
(their one home is app/security_headers.py), language choice and the cross-site refusal of
form posts. A platform package: it imports no domain package."""

from app.web.cards import card_label
from app.web.i18n import messages
from app.web.pages import (
    PageScripts,
    ScriptTag,
    card_result_page,
    cross_site_refusal,
    error_page,
    form_lang,
    html_error_page,
    keep_lang,
    lang_of,
    problem_text,
    render,
)

__all__ = [
    "PageScripts",
    "ScriptTag",
    "card_label",
    "card_result_page",
    "cross_site_refusal",
    "error_page",
    "form_lang",
    "html_error_page",
    "keep_lang",
    "lang_of",
    "messages",
    "problem_text",
    "render",
]
