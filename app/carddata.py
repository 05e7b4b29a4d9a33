"""Card-shaped data: found and redacted before anything is stored, spooled or logged.

One rule for the whole service (logs, kickbacks, request ids, merchant fields):

- a run of 13-19 digits, with optional single separators between digits (space, hyphen, dot,
  `+`, and their URL encodings `%20`, `%2D`, `%2E`, `%2B`, also double-encoded `%2520`), digits
  themselves possibly percent-encoded (`%34`), full-width digits and separators as typed on a
  Japanese keyboard, that passes the Luhn check (or holds a Luhn-valid 13-19 digit number
  between separators, as "4111 1111 1111 1111 2030" does);
- the value of a card field by its name (`cn=…`, `"cvv": "…"`, `securitycode=…`).

A run must stand alone: digits next to a letter or `_` are part of a word, and our ids are hex
(`pay_<32 hex>`: about one in fourteen holds 13 digits in a row) and must stay searchable.
Gateway gids (12 digits), amounts, dates and phone numbers are too short or not Luhn-shaped."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import AnyStr

from pydantic import AfterValidator

# Separators a person or an encoder puts between digit groups (one at a time).
_ESCAPED_SEP = r"%(?:2[0BDEbde]|09)|%25(?:2[0BDEbde])"
_SEP_ASCII = rf"(?:[ \t.+\-]|{_ESCAPED_SEP})"
_SEP_TEXT = rf"(?:[ \t.+\-\u3000\u2010-\u2015\uff0d\u30fc]|{_ESCAPED_SEP})"
_DIGIT_ASCII = r"(?:[0-9]|%3[0-9])"
_DIGIT_TEXT = r"(?:\d|%3[0-9])"
# A maximal run of digits and single separators, not starting inside a percent-escape
# (`%20` is a space, not the digits 2 and 0). Possessive: each character is looked at once.
_NOT_IN_ESCAPE = r"(?<!%)(?<!%[0-9A-Fa-f])"
_RUN_TEXT = re.compile(rf"{_NOT_IN_ESCAPE}{_DIGIT_TEXT}(?:{_SEP_TEXT}?{_DIGIT_TEXT})*+")
_RUN_BYTES = re.compile(
    rf"{_NOT_IN_ESCAPE}{_DIGIT_ASCII}(?:{_SEP_ASCII}?{_DIGIT_ASCII})*+".encode()
)
_TOKEN_TEXT = re.compile(rf"%3([0-9])|(\d)|{_SEP_TEXT}")
_TOKEN_BYTES = re.compile(rf"%3([0-9])|([0-9])|{_SEP_ASCII}".encode())
_ESCAPE_TEXT = re.compile(r"%[0-9A-Fa-f]{2}")
_ESCAPE_BYTES = re.compile(rb"%[0-9A-Fa-f]{2}")

# Card fields by name, in a query string, a form, JSON or free text: `cn=…`, `"cvv": "…"`
# (a value already masked, `***`, is left as it is; a value must start with a digit, `*` or a
# percent-escape, so binary noise that happens to spell `CN:` is not taken for one).
CARD_FIELD_NAMES = (
    "cn",
    "cvv",
    "cvv2",
    "cvc",
    "cvc2",
    "securitycode",
    "security_code",
    "card_number",
    "cardnumber",
    "card_no",
    "cardno",
    "ccnumber",
    "cc_number",
)
_NAMES = "|".join(sorted(CARD_FIELD_NAMES, key=len, reverse=True))
_FIELD = (
    rf"(?i)(?<![A-Za-z0-9_])({_NAMES})([\"']?\s*(?:=|:|%3D)\s*[\"']?)"
    r"((?!\*\*\*(?:[&\s,;\"'<>]|$))[0-9%*][^&\s,;\"'<>]*)"
)
_FIELD_TEXT = re.compile(_FIELD)
_FIELD_BYTES = re.compile(_FIELD.encode())

MIN_DIGITS, MAX_DIGITS = 13, 19
# What a merchant field that holds card data is refused with (a 422 naming the field).
CARD_SHAPED = "looks like a card number; never send card data to this API"


def luhn_ok(digits: list[int]) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _holds_card(digits: list[int], starts: list[int], ends: list[int]) -> bool:
    """A Luhn-valid 13-19 digit number from a group boundary to a later one."""
    ending = set(ends)
    for start in starts:
        for end in range(start + MIN_DIGITS, start + MAX_DIGITS + 1):
            if end in ending and luhn_ok(digits[start:end]):
                return True
    return False


def _is_word(char: str) -> bool:
    return char == "_" or char.isdigit() or ("a" <= char.lower() <= "z")


def _card_in_run(digits: list[int], cuts: list[int], word_before: bool, word_after: bool) -> bool:
    if len(digits) < MIN_DIGITS:
        return False
    # Next to a letter, the first (last) group belongs to that word: "x4111111111111111" is an
    # id, not a card; the groups after it may still be one.
    starts = cuts[1:-1] if word_before else cuts[:-1]
    ends = cuts[1:-1] if word_after else cuts[1:]
    return _holds_card(digits, starts, ends)


def _parse(run: AnyStr, tokens: re.Pattern[AnyStr]) -> tuple[list[int], list[int]]:
    """The run's digits, and the positions (in digits) of its group boundaries."""
    digits: list[int] = []
    cuts = [0]
    for m in tokens.finditer(run):
        digit = m.group(1) if m.group(1) is not None else m.group(2)
        if digit is None:
            cuts.append(len(digits))
        elif isinstance(digit, bytes):
            digits.append(digit[0] - 0x30)
        else:
            digits.append(unicodedata.digit(digit))
    cuts.append(len(digits))
    return digits, cuts


def _text_spans(text: str) -> list[tuple[int, int, list[int]]]:
    spans = []
    for m in _RUN_TEXT.finditer(text):
        start, end = m.span()
        if end - start < MIN_DIGITS:
            continue  # too short to hold a card number, however written
        digits, cuts = _parse(m.group(), _TOKEN_TEXT)
        before = start > 0 and not _ESCAPE_TEXT.fullmatch(text, max(start - 3, 0), start)
        word_before = before and _is_word(text[start - 1])
        word_after = end < len(text) and _is_word(text[end])
        if _card_in_run(digits, cuts, word_before, word_after):
            spans.append((start, end, digits))
    return spans


def _bytes_spans(data: bytes) -> list[tuple[int, int, list[int]]]:
    spans = []
    for m in _RUN_BYTES.finditer(data):
        start, end = m.span()
        if end - start < MIN_DIGITS:
            continue  # too short to hold a card number, however written
        digits, cuts = _parse(m.group(), _TOKEN_BYTES)
        before = start > 0 and not _ESCAPE_BYTES.fullmatch(data, max(start - 3, 0), start)
        word_before = before and _is_word(chr(data[start - 1]))
        word_after = end < len(data) and _is_word(chr(data[end]))
        if _card_in_run(digits, cuts, word_before, word_after):
            spans.append((start, end, digits))
    return spans


def _masked(digits: list[int]) -> str:
    """Stars and the last four digits (what a receipt may show)."""
    return "*" * (len(digits) - 4) + "".join(map(str, digits[-4:]))


def contains_card(text: str) -> bool:
    """True when `text` holds a card-shaped number or a card field's value."""
    return bool(_FIELD_TEXT.search(text)) or bool(_text_spans(text))


def redact_text(text: str, mask: Callable[[list[int]], str] = _masked) -> str:
    """`text` with card-shaped numbers masked (by default stars and the last four digits)
    and card fields' values replaced by `***`."""
    out, last = [], 0
    for start, end, digits in _text_spans(text):
        out += [text[last:start], mask(digits)]
        last = end
    text = "".join([*out, text[last:]])
    return _FIELD_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def redact_bytes(data: bytes) -> bytes:
    """`redact_text` for raw bytes (a query string or body in any ASCII-compatible encoding:
    UTF-8, CP932, percent-encoded). Bytes without card data come back unchanged."""
    if not data:
        return data
    out, last = [], 0
    for start, end, digits in _bytes_spans(data):
        out += [data[last:start], _masked(digits).encode()]
        last = end
    data = _FIELD_BYTES.sub(
        lambda m: m.group(1) + m.group(2) + b"***", b"".join([*out, data[last:]])
    )
    if max(data) < 0x80:
        return data
    # Full-width digits and separators, as UTF-8 (the text rules; other encodings keep the
    # ASCII rules above).
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    redacted = redact_text(text)
    return data if redacted == text else redacted.encode("utf-8")


def refuse_card_data(value: str) -> str:
    """Pydantic validator for merchant fields: card data is a 422 naming the field."""
    if contains_card(value):
        raise ValueError(CARD_SHAPED)
    return value


# The one validator of every merchant field (order ids, uids, e-mail, phone, codes, URLs, free
# text): place it before the field's own rule so card data gets this message.
NoCardData = AfterValidator(refuse_card_data)
