"""What an SBPS value may hold, checked or made so before anything is sent.

research/sbps-notes.md "Transport" (XML rules): Shift_JIS; a tab, CR or LF inside a value is an
error; a space in a numeric field is an error; the platform-dependent Shift_JIS ranges and
`` ^`{|}~&<>"' `` are replaced before sending (the EC-CUBE plugin). Seed 004's type legend:
9 = digits (1-byte 0-9), X = half-width text, M = multibyte text (Base64 of Shift_JIS bytes).

"Shift_JIS" is read as CP932 (Windows-31J), the superset every Japanese system means by it.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

ENCODING = "cp932"


class SbpsValueError(ValueError):
    """A request value SBPS would refuse (or misread): raised before anything is sent."""


class FieldKind(StrEnum):
    NUMERIC = "9"
    HALF_WIDTH = "X"
    MULTIBYTE = "M"


# Seed 004 and the notes: 9 fields; every other field not listed as M is X.
NUMERIC_FIELDS = frozenset(
    {
        "merchant_id",
        "service_id",
        "amount",
        "tax",
        "sps_cust_info_return_flg",
        "dtl_rowno",
        "dtl_item_count",
        "dtl_tax",
        "dtl_amount",
        "dealings_type",
        "divide_times",
        "cust_manage_flg",
        "cardbrand_return_flg",
        "encrypted_flg",
        "request_date",
        "limit_second",
        "tracking_id",
        "processing_datetime",
        "response_info_type",
    }
)
# The notes: item_name, free1-3 (and the detail lines' names) are Base64 of Shift_JIS bytes;
# resrv1-3 are M in the Ruby gem's card-save request [S].
MULTIBYTE_FIELDS = frozenset(
    {"item_name", "free1", "free2", "free3", "dtl_item_name", "resrv1", "resrv2", "resrv3"}
)


def kind_of(name: str) -> FieldKind:
    if name in NUMERIC_FIELDS:
        return FieldKind.NUMERIC
    if name in MULTIBYTE_FIELDS:
        return FieldKind.MULTIBYTE
    return FieldKind.HALF_WIDTH


_LINE_BREAKS = frozenset("\t\r\n")
_DIGITS = re.compile(r"[0-9]*")
_HALF_WIDTH = re.compile(r"[\x20-\x7e]*")

# The plugin's list, replaced by full-width forms that are plain JIS X 0208 (so they pass the
# range check below). `"` and `'` go to the curly quotes: their full-width forms (U+FF02,
# U+FF07) encode to 0xEEFC / 0xEEFB, inside a platform-dependent range.
_SPECIALS = {
    "^": "＾",
    "`": "｀",
    "{": "｛",
    "|": "｜",
    "}": "｝",
    "~": "～",
    "&": "＆",
    "<": "＜",
    ">": "＞",
    '"': "”",
    "'": "’",
}
# Characters CP932 cannot encode but has a plain JIS X 0208 form of (the form Shift_JIS
# decoders show). Å (U+00C5) is what NFC makes of the Angstrom sign, which CP932 has.
_PREFERRED = {
    "¥": "￥",
    "‾": "￣",
    "—": "―",
    "Å": "Å",
}
# Seed-less but named by the notes (plugin): NEC special characters 0x8740-0x879E, NEC-selected
# IBM extensions 0xED40-0xEEFC, IBM extensions 0xFA40-0xFC4B. We add the user-defined area
# 0xF040-0xF9FC (Unicode private use): it holds no standard character at all.
_PLATFORM_RANGES = ((0x8740, 0x879E), (0xED40, 0xEEFC), (0xF040, 0xF9FC), (0xFA40, 0xFC4B))
# What an unrepresentable character becomes when no equivalent exists: ASCII, so readable in
# any system SBPS shows the value in (a full-width ？ would do as well; this is our choice).
REPLACEMENT = "?"


def _sendable(char: str) -> str | None:
    """`char` as CP932 carries it (its canonical decoded form), or None if it cannot be
    sent: not encodable, a platform-dependent code, a control or one of the specials."""
    if char in _SPECIALS or unicodedata.category(char) == "Cc":
        return None
    try:
        raw = char.encode(ENCODING)
    except UnicodeEncodeError:
        return None
    if len(raw) == 2:
        code = raw[0] << 8 | raw[1]
        if any(low <= code <= high for low, high in _PLATFORM_RANGES):
            return None
    # CP932 encodes some JIS variants (U+301C WAVE DASH...) to the code it decodes as
    # another character (U+FF5E): send and hash the one SBPS will read back.
    return raw.decode(ENCODING)


def _direct(char: str) -> str | None:
    if char in _SPECIALS:
        return _SPECIALS[char]
    return _sendable(_PREFERRED.get(char, char))


def _all_direct(text: str) -> str | None:
    parts = [_direct(c) for c in text]
    return None if any(p is None for p in parts) else "".join(p or "" for p in parts)


def _invisible(char: str) -> bool:
    """Zero-width and format characters (ZWJ, BOM, direction marks) and variation selectors:
    they show nothing, so they are dropped rather than shown as a replacement."""
    code = ord(char)
    return (
        unicodedata.category(char) == "Cf" or 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
    )


def _replace_char(char: str) -> str:
    direct = _direct(char)
    if direct is not None:
        return direct
    if _invisible(char):
        return ""
    # ① -> 1, ㈱ -> (株), Ⅲ -> III, full-width ＂ -> " -> ”: the compatibility form.
    compat = unicodedata.normalize("NFKC", char)
    if compat != char and (mapped := _all_direct(compat)) is not None:
        return mapped
    # é -> e: the letter without its accent, when that is all CP932 lacks.
    bare = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if bare and bare != char and (mapped := _all_direct(bare)) is not None:
        return mapped
    return REPLACEMENT


def check_no_line_breaks(name: str, value: str) -> None:
    if any(c in _LINE_BREAKS for c in value):
        raise SbpsValueError(f"{name}: a tab, CR or LF is not allowed in an SBPS value")


def replace_text(value: str) -> str:
    """A multibyte (M) value made sendable: NFC first (a decomposed が is one character in
    Shift_JIS), then each character kept, dropped if invisible, or replaced as above.
    Idempotent. Tab/CR/LF are
    not replaced but refused (SbpsValueError): they change what the text says."""
    check_no_line_breaks("text", value)
    return "".join(_replace_char(c) for c in unicodedata.normalize("NFC", value))


def check_value(name: str, value: str) -> str:
    """The value to send for field `name`: M text replaced, 9 and X checked as they are (an
    identifier or amount silently changed would be worse than a refusal)."""
    check_no_line_breaks(name, value)
    kind = kind_of(name)
    if kind is FieldKind.MULTIBYTE:
        return replace_text(value)
    if kind is FieldKind.NUMERIC:
        if not _DIGITS.fullmatch(value):
            raise SbpsValueError(f"{name}: only the digits 0-9 are allowed (no spaces)")
        return value
    if not _HALF_WIDTH.fullmatch(value):
        raise SbpsValueError(f"{name}: only half-width (ASCII) characters are allowed")
    return value
