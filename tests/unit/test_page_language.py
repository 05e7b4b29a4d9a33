"""Which language a shopper's page speaks, and what it says of a problem."""

from __future__ import annotations

import pytest
from fastapi import Request, Response

from app.config import Settings
from app.errors import Conflict, problem_for
from app.gateway import codes
from app.web import problem_text
from app.web.pages import keep_lang, lang_of, preferred_lang


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("", "ja"),
        ("en-US,en;q=0.9", "en"),
        ("en-US,en;q=0.9,ja;q=0.8", "en"),
        ("ja,en-US;q=0.9,en;q=0.8", "ja"),
        ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
        ("fr-FR,de", "ja"),
        ("en;q=0,ja;q=0", "ja"),
        ("en;q=0.5,ja;q=0.5", "ja"),
        ("en;q=abc", "ja"),
        ("EN-gb", "en"),
    ],
)
def test_accept_language(header: str, lang: str) -> None:
    assert preferred_lang(header) == lang


def test_a_problem_is_told_in_the_pages_language() -> None:
    busy = Conflict("A payment for this checkout session is already being processed.")
    busy.code = "payment_in_progress"
    assert "処理中" in (problem_text("ja", busy) or "")
    assert "being processed" in (problem_text("en", busy) or "")
    # A gateway error: its own Japanese message, never the English detail.
    declined = problem_for(codes.lookup("ER584"))
    ja = problem_text("ja", declined)
    assert ja and ja == codes.lookup("ER584").message_ja and (declined.detail or "-") not in ja
    # No text for it: the status's standard text on a Japanese page, the detail on English.
    plain = Conflict("Something only the API knows.")
    assert problem_text("ja", plain) is None
    assert problem_text("en", plain) == "Something only the API knows."


def _request(query: str = "", cookie: str = "", accept: str = "") -> Request:
    headers = [(b"cookie", cookie.encode()), (b"accept-language", accept.encode())]
    return Request({"type": "http", "query_string": query.encode(), "headers": headers})


@pytest.mark.parametrize(
    ("query", "cookie", "accept", "lang"),
    [
        ("lang=en", "rp_lang=ja", "ja", "en"),  # the switch wins
        ("", "rp_lang=en", "ja", "en"),  # then what the browser chose before
        ("", "rp_lang=fr", "en", "en"),  # an unknown choice is no choice
        ("lang=xx", "", "", "ja"),
    ],
)
def test_the_page_language_follows_the_switch_then_the_browser(
    query: str, cookie: str, accept: str, lang: str
) -> None:
    assert lang_of(_request(query, cookie, accept)) == lang


def test_the_switch_is_remembered_only_when_it_changes() -> None:
    settings = Settings(public_base_url="https://pay.shop.example")
    response = Response()
    keep_lang(_request("lang=en"), response, settings)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("rp_lang=en;") and "Secure" in cookie and "HttpOnly" in cookie
    again = Response()
    keep_lang(_request("lang=en", "rp_lang=en"), again, settings)
    assert "set-cookie" not in again.headers
