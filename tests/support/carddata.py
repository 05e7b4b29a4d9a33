"""The test suite's own card-data detector (independent of app/carddata.py, which it checks):
the sandbox card numbers in every written form, CVVs and raw tokens. Used by the final scan
(tests/reliability/test_zz_no_card_data.py) and by the attack tests."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote_plus, unquote_to_bytes

from app.sandbox import cards

CARD_NUMBERS = sorted(
    {v for v in vars(cards).values() if isinstance(v, str) and re.fullmatch(r"\d{16}", v)}
    # The number everyone types (the attack tests send it in every written form).
    | {"4111111111111111"}
)
# Digits with single separators between them, as a card number is written by hand or
# URL-encoded: `4444 3333 …`, `4444-3333-…`, `4444+3333+…`, `4444%203333…`.
DIGIT_RUN = re.compile(r"\d(?:(?:[ .+\-]|%(?:25)?2[0BDE])?\d)+", re.IGNORECASE)
# A CVV next to its name: `cvv=123` (forms, queries) or `"cvv": "123"` (JSON).
CVV = re.compile(r"""(?i)\bcvv["']?\s*[=:]\s*["']?\d""")
# A token outside its masked form: `tkn=<value>` or `"tkn": "<value>"` / `"token": "<value>"`.
TOKEN_IN_CONTEXT = re.compile(
    r"""(?i)(?:\btkn=(?!\*\*\*|tkn\(|&|$|\s)|"(?:tkn|token)"\s*:\s*"(?!tkn\(|\*|"))"""
)
# The shape of a sandbox token (27 random bytes in base64: 36 characters, like the vendor's).
TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{36}(?![A-Za-z0-9+/=_-])")


def _views(text: str) -> list[str]:
    """The text, and as it reads once (twice) URL-decoded and with full-width digits made
    ASCII: a number percent-encoded digit by digit (`%34%34…`) shows in a decoded view."""
    once = unquote_plus(text)
    return [text, once, unquote_plus(once), unicodedata.normalize("NFKC", once)]


def _numbers_in(text: str) -> set[str]:
    found = set()
    for view in _views(text):
        for m in DIGIT_RUN.finditer(view):
            digits = re.sub(r"\D", "", m.group())
            found |= {n for n in CARD_NUMBERS if n in digits}
    return found


def _looks_like_token(candidate: str) -> bool:
    # Random base64 has both cases and a digit; ids, hashes and words do not fit the shape.
    return bool(
        re.search(r"[a-z]", candidate)
        and re.search(r"[A-Z]", candidate)
        and re.search(r"\d", candidate)
    )


def find_card_data(text: str) -> list[str]:
    """What of card data `text` holds, described without repeating it in full."""
    found = [f"card number ending {n[-4:]}" for n in sorted(_numbers_in(text))]
    found += [f"CVV at {m.start()}" for view in _views(text) for m in CVV.finditer(view)]
    found += [
        f"token at {m.start()}: {text[m.start() : m.start() + 12]}…"
        for m in TOKEN_IN_CONTEXT.finditer(text)
    ]
    found += [
        f"token-shaped {m.group()[:6]}… at {m.start()}"
        for m in TOKEN_SHAPE.finditer(text)
        if _looks_like_token(m.group())
    ]
    return found


# A bytea value in the dump's COPY data (`\\x3435…`), e.g. a kickback's raw bytes.
_BYTEA = re.compile(r"\\\\x((?:[0-9a-f]{2})+)")


def with_bytea_decoded(dump: str) -> str:
    """The dump plus the text of every bytea value in it (percent-escapes undone too)."""
    decoded = [
        unquote_to_bytes(bytes.fromhex(m.group(1))).decode("utf-8", errors="replace")
        for m in _BYTEA.finditer(dump)
    ]
    return "\n".join([dump, *decoded])
