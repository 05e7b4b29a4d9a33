"""Pure encoders and decoders for the ROBOT PAYMENT wire formats (seeds 000 and 002).

Answers are comma-separated positional lines whose length varies in the wild (11-14 fields,
trailing commas, CRLF), with the merchant's free parameters echoed as `key=value` at the end.
Everything here is tolerant of that, and raises only CodecError for what it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote_to_bytes, urlencode

from app.gateway.text import CodecError as CodecError
from app.gateway.text import decode_bytes as decode_bytes

CarduserKind = Literal["user", "card", "user_info", "card_info"]

# A free parameter echoed back: an identifier-like key, then '='.
_EXTRA = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*=")
_EXTRA_BOUNDARY = re.compile(r",(?=[A-Za-z_][A-Za-z0-9_.\-]*=)")
# ASCII digits only and bounded, so int() can neither see unicode digits nor a huge string.
_INT = re.compile(r"[0-9]{1,18}")
# A bare error body: `ER003`, `ER:ER003` (rt=0, or an early rejection) or a G code.
_BARE_CODE = re.compile(r"(?:ER:)?\s*(ER[0-9]{3}|G[0-9]{2,3})")

_PAYMENT_POSITIONS = ("id", "ps", "uid", "key", "num")  # after gid..ta
_CARDUSER_LAYOUTS: dict[str, tuple[str, ...]] = {
    "user": ("uid", "key"),
    "card": ("uid", "key", "num"),
    "user_info": ("uid", "key", "em", "pn"),
    "card_info": ("uid", "key", "num", "cn", "ed", "fn", "ln"),
}
_KICKBACK_FIELDS = frozenset(
    {"gid", "rst", "ap", "ec", "god", "cod", "am", "tx", "sf", "ta", "id", "ps", "acid"}
    | {"uid", "key", "num"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentResponse:
    gid: int
    rst: int
    ap: str | None = None
    ec: str | None = None
    god: str | None = None
    cod: str | None = None
    am: int | None = None
    tx: int | None = None
    sf: int | None = None
    ta: int | None = None
    id: str | None = None
    ps: str | None = None
    uid: str | None = None
    key: str | None = None
    num: int | None = None
    extras: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class CarduserResponse:
    rst: int
    ec: str | None = None
    uid: str | None = None
    key: str | None = None
    num: int | None = None
    em: str | None = None
    pn: str | None = None
    cn: str | None = None
    ed: str | None = None
    fn: str | None = None
    ln: str | None = None
    extras: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rt0Response:
    """The synchronous answer in rt=0 mode: accepted (`OK`) or an error code."""

    accepted: bool
    code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class KickbackData:
    # None when missing or not a number: the caller keeps and flags such a notice.
    gid: int | None
    rst: int | None
    ap: str | None = None
    ec: str | None = None
    god: str | None = None
    cod: str | None = None  # kept exactly as sent (the seed's sample has a trailing space)
    am: int | None = None
    tx: int | None = None
    sf: int | None = None
    ta: int | None = None
    id: str | None = None
    ps: str | None = None
    acid: int | None = None
    # After a pay with registration (gateway_token.aspx with uid), as the rt=1 answer has them.
    uid: str | None = None
    key: str | None = None
    num: int | None = None
    extras: dict[str, str] = field(default_factory=dict)


# --- primitives --------------------------------------------------------------------------


def encode_form(params: Mapping[str, str]) -> bytes:
    """application/x-www-form-urlencoded in UTF-8, in the mapping's order."""
    return urlencode(list(params.items()), encoding="utf-8").encode("ascii")


def to_int(value: str | None) -> int | None:
    """An int when the text is plainly one (blanks around allowed), else None."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if _INT.fullmatch(text) else None


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return text or None


def _split_line(body: bytes | str) -> list[str]:
    text = decode_bytes(body) if isinstance(body, bytes) else body
    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        raise CodecError("empty response")
    return text.split(",")


def _split_extras(tokens: list[str], first_free: int) -> tuple[list[str], dict[str, str]]:
    """Positional tokens, then the echoed `key=value` parameters that start at or after
    index `first_free`. A value may itself contain commas: the rest of the line is re-joined
    and cut only where a new `key=` begins."""
    start = next(
        (i for i in range(first_free, len(tokens)) if _EXTRA.match(tokens[i])), len(tokens)
    )
    tail = ",".join(tokens[start:]).rstrip(",")
    extras: dict[str, str] = {}
    for pair in _EXTRA_BOUNDARY.split(tail) if tail else []:
        key, _, value = pair.partition("=")
        extras.setdefault(key, value)
    return tokens[:start], extras


def _rst(token: str | None) -> int:
    rst = to_int(token)
    if rst not in (1, 2):
        raise CodecError(f"rst is not 1 or 2: {token!r}")
    return rst


# --- payment answers ---------------------------------------------------------------------


def parse_payment_response(body: bytes | str, uid: str | None = None) -> PaymentResponse:
    """`gid,rst,ap,ec,god,cod,am,tx,sf,ta,id,ps[,uid,key,num][,k=v...]`; `uid`: the one we
    sent to register, located to read id,ps,uid,key,num in either layout (see _tail)."""
    positional, extras = _split_extras(_split_line(body), 10)
    if len(positional) < 4:
        raise CodecError("fewer than 4 fields")
    fields = positional + [""] * (10 + len(_PAYMENT_POSITIONS) - len(positional))
    gid = to_int(fields[0])
    if gid is None:
        raise CodecError(f"gid is not numeric: {fields[0]!r}")
    tail = _tail(fields, uid)
    return PaymentResponse(
        gid=gid,
        rst=_rst(fields[1]),
        ap=_blank_to_none(fields[2]),
        ec=_blank_to_none(fields[3]),
        god=_blank_to_none(fields[4]),
        cod=fields[5] or None,
        am=to_int(fields[6]),
        tx=to_int(fields[7]),
        sf=to_int(fields[8]),
        ta=to_int(fields[9]),
        id=_blank_to_none(tail["id"]),
        ps=_blank_to_none(tail["ps"]),
        uid=_blank_to_none(tail["uid"]),
        key=_blank_to_none(tail["key"]),
        num=to_int(tail["num"]),
        extras=extras,
    )


def registration_uid_index(fields: list[str], uid: str | None) -> int | None:
    """Where the uid we sent stands in a payment answer: 12 in GATEWAY.md's layout, 13 in
    seed 000 pp.14, 19's (which lists `sf` again after `ta`); None when it is not there."""
    if uid:
        for index in (12, 13):
            if index < len(fields) and fields[index].strip() == uid:
                return index
    return None


def _tail(fields: list[str], uid: str | None) -> dict[str, str]:
    index = registration_uid_index(fields, uid)
    start = 10 if index is None else index - 2
    return dict(
        zip(_PAYMENT_POSITIONS, fields[start : start + len(_PAYMENT_POSITIONS)], strict=False)
    )


def parse_bare_code(body: bytes | str) -> str | None:
    """`ER003` / `ER:ER003` / `G12` alone, as rt=0 errors (and early rejections) look."""
    text = decode_bytes(body) if isinstance(body, bytes) else body
    match = _BARE_CODE.fullmatch(text.strip())
    return match.group(1) if match else None


def parse_rt0_body(body: bytes | str) -> Rt0Response:
    """The synchronous rt=0 body: `OK`, or an error code with or without the `ER:` prefix."""
    text = decode_bytes(body) if isinstance(body, bytes) else body
    if text.strip().upper() == "OK":
        return Rt0Response(accepted=True)
    code = parse_bare_code(text)
    if code is None:
        raise CodecError("not an rt=0 answer")
    return Rt0Response(accepted=False, code=code)


# --- user and card answers ---------------------------------------------------------------


def parse_carduser_response(kind: CarduserKind, body: bytes | str) -> CarduserResponse:
    """`rst,ec,uid,key` plus the fields of `kind`, then echoed free parameters. Errors may
    come shorter than the layout, so only rst is required."""
    names = _CARDUSER_LAYOUTS[kind]
    # uid and key are plain alphanumerics; later slots may be followed by echoed extras.
    positional, extras = _split_extras(_split_line(body), 4)
    values = dict(zip(("rst", "ec", *names), positional, strict=False))
    return CarduserResponse(
        rst=_rst(values.get("rst")),
        ec=_blank_to_none(values.get("ec")),
        uid=_blank_to_none(values.get("uid")),
        key=_blank_to_none(values.get("key")),
        num=to_int(values.get("num")),
        em=_blank_to_none(values.get("em")),
        pn=_blank_to_none(values.get("pn")),
        cn=_blank_to_none(values.get("cn")),
        ed=_blank_to_none(values.get("ed")),
        fn=_blank_to_none(values.get("fn")),
        ln=_blank_to_none(values.get("ln")),
        extras=extras,
    )


# --- kickbacks ---------------------------------------------------------------------------


def parse_query_bytes(raw: bytes) -> dict[str, str]:
    """A raw query string or form body, decoded per value (UTF-8, else CP932).

    Done at the byte level because Starlette decodes percent-escapes as UTF-8 and garbles
    CP932. Never raises; the first of repeated keys wins; pieces without a key are dropped.
    A NUL becomes U+FFFD: no real value holds one, and PostgreSQL text cannot store it (the
    raw bytes are kept as they came anyway).
    """
    out: dict[str, str] = {}
    for piece in raw.lstrip(b"?").split(b"&"):
        if not piece:
            continue
        raw_key, _, raw_value = piece.partition(b"=")
        key = _no_nul(decode_bytes(unquote_to_bytes(raw_key.replace(b"+", b" "))))
        if not key or key in out:
            continue
        out[key] = _no_nul(decode_bytes(unquote_to_bytes(raw_value.replace(b"+", b" "))))
    return out


def _no_nul(text: str) -> str:
    return text.replace("\x00", "\ufffd")


def parse_kickback(params: Mapping[str, str]) -> KickbackData:
    """The kickback's parameters, ints where parseable, cod exactly as sent. Never raises:
    a notice is evidence to keep even when it is malformed."""
    return KickbackData(
        gid=to_int(params.get("gid")),
        rst=to_int(params.get("rst")),
        ap=_blank_to_none(params.get("ap")),
        ec=_blank_to_none(params.get("ec")),
        god=_blank_to_none(params.get("god")),
        cod=params.get("cod") or None,
        am=to_int(params.get("am")),
        tx=to_int(params.get("tx")),
        sf=to_int(params.get("sf")),
        ta=to_int(params.get("ta")),
        id=_blank_to_none(params.get("id")),
        ps=_blank_to_none(params.get("ps")),
        acid=to_int(params.get("acid")),
        uid=_blank_to_none(params.get("uid")),
        key=_blank_to_none(params.get("key")),
        num=to_int(params.get("num")),
        extras={k: v for k, v in params.items() if k not in _KICKBACK_FIELDS},
    )
