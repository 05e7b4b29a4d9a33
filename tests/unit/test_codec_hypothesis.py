"""More property tests for the wire codec (test_gateway_codec_props.py has the never-crash
ones): whole answers round-trip through their layouts, in UTF-8 and CP932; our own form
encoding reads back through the kickback decoder; no decoded value ever holds a NUL."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from app.gateway.robotpayment.codec import (
    CodecError,
    decode_bytes,
    encode_form,
    parse_carduser_response,
    parse_payment_response,
    parse_query_bytes,
    parse_rt0_body,
    to_int,
)

_KANA_KANJI = "あいうえおアイウエオ注文番号株式会社東京ー・「」。＠"
# Field text as a gateway answer carries it: no separators, no surrounding blanks.
_FIELD_TEXT = st.text(
    st.sampled_from([*"abcXYZ019-_.", *_KANA_KANJI]), min_size=1, max_size=20
).filter(lambda s: s == s.strip())
_ALNUM = st.text(st.sampled_from("ABCDEFabcdef0123456789"), min_size=1, max_size=12)
_DIGITS = st.integers(min_value=0, max_value=99_999_999)
_EXTRA_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
# Echoed free parameters: values may hold commas and '=' but never start a new `key=`, and
# do not end in a comma or blank (the end of a line is trimmed of those: trailing empty
# fields are common in the wild).
_EXTRA_VALUES = st.text(st.sampled_from([*"abc 019,=-", *_KANA_KANJI]), max_size=20).filter(
    lambda v: (
        not any(part[:1].isalpha() and "=" in part for part in v.split(",")[1:])
        and v == v.rstrip(", ")
    )
)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@st.composite
def payment_answers(draw: Any) -> tuple[str, dict[str, Any]]:
    """A payment answer line and the values it carries."""
    v: dict[str, Any] = {
        "gid": draw(st.integers(min_value=0, max_value=10**12)),
        "rst": draw(st.sampled_from([1, 2])),
        "ap": draw(st.one_of(st.none(), _ALNUM)),
        "ec": draw(st.one_of(st.none(), st.from_regex(r"(ER[0-9]{3}|G[0-9]{2})", fullmatch=True))),
        "god": draw(st.one_of(st.none(), st.from_regex(r"[0-9]{1,10}", fullmatch=True))),
        "cod": draw(st.one_of(st.none(), _FIELD_TEXT)),
        "am": draw(_DIGITS),
        "tx": draw(_DIGITS),
        "sf": draw(_DIGITS),
        "ta": draw(_DIGITS),
        "id": draw(st.one_of(st.none(), _ALNUM)),
        "ps": draw(st.one_of(st.none(), _ALNUM)),
    }
    if draw(st.booleans()):
        v |= {"uid": draw(_ALNUM), "key": draw(_ALNUM), "num": draw(st.integers(0, 999))}
    else:
        v |= {"uid": None, "key": None, "num": None}
    extras = draw(st.dictionaries(_EXTRA_KEYS, _EXTRA_VALUES, max_size=3))
    order = ["gid", "rst", "ap", "ec", "god", "cod", "am", "tx", "sf", "ta", "id", "ps"]
    if v["uid"] is not None:
        order += ["uid", "key", "num"]
    fields = ["" if v[name] is None else str(v[name]) for name in order]
    fields += [f"{k}={value}" for k, value in extras.items()]
    v["extras"] = extras
    return ",".join(fields) + draw(st.sampled_from(["", "\r\n", "\n", ",", ",,\r\n"])), v


def _as_dict(r: Any, names: list[str]) -> dict[str, Any]:
    return {name: getattr(r, name) for name in names}


@given(payment_answers())
def test_payment_answers_round_trip(answer: tuple[str, dict[str, Any]]) -> None:
    line, values = answer
    parsed = parse_payment_response(line)
    assert _as_dict(parsed, list(values)) == values


@given(payment_answers())
def test_payment_answers_read_the_same_in_cp932(answer: tuple[str, dict[str, Any]]) -> None:
    line, values = answer
    raw = line.encode("cp932")
    # Bytes that are valid UTF-8 as well are read as UTF-8, the documented encoding.
    assume(raw.isascii() or not _is_utf8(raw))
    assert _as_dict(parse_payment_response(raw), list(values)) == values


@given(
    uid=_ALNUM,
    key=_ALNUM,
    num=st.integers(0, 999),
    last4=st.from_regex(r"[0-9]{4}", fullmatch=True),
    ed=st.from_regex(r"[0-9]{4}", fullmatch=True),
    fn=st.from_regex(r"[A-Z]{1,10}", fullmatch=True),
    ln=st.from_regex(r"[A-Z]{1,10}", fullmatch=True),
    extras=st.dictionaries(_EXTRA_KEYS, _EXTRA_VALUES, max_size=2),
)
def test_card_lookup_round_trips(
    uid: str, key: str, num: int, last4: str, ed: str, fn: str, ln: str, extras: dict[str, str]
) -> None:
    cn = "************" + last4
    line = ",".join(
        ["1", "", uid, key, str(num), cn, ed, fn, ln, *(f"{k}={v}" for k, v in extras.items())]
    )
    r = parse_carduser_response("card_info", line.encode("utf-8"))
    assert (r.rst, r.ec, r.uid, r.key, r.num, r.cn, r.ed, r.fn, r.ln) == (
        1,
        None,
        uid,
        key,
        num,
        cn,
        ed,
        fn,
        ln,
    )
    assert r.extras == extras


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.text(max_size=30),
        min_size=1,
        max_size=6,
    )
)
def test_our_form_encoding_reads_back_through_the_kickback_decoder(
    params: dict[str, str],
) -> None:
    # Any text (surrogates cannot be sent; a NUL is replaced by design; a leading BOM is
    # taken as one by the UTF-8 reading).
    for text in (*params, *params.values()):
        assume("\x00" not in text and not text.startswith("\ufeff"))
        assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in text))
    assert parse_query_bytes(encode_form(params)) == params


@given(st.binary(max_size=200))
def test_decoded_kickback_values_never_hold_a_nul(raw: bytes) -> None:
    # PostgreSQL text cannot store a NUL: whatever arrives, no decoded value carries one.
    for key, value in parse_query_bytes(raw + b"&a=%00" + raw).items():
        assert "\x00" not in key and "\x00" not in value


@given(st.text(max_size=40))
def test_decode_bytes_reads_utf8_back(text: str) -> None:
    assume(not text.startswith("\ufeff"))
    assume(not any(0xD800 <= ord(c) <= 0xDFFF for c in text))
    assert decode_bytes(text.encode("utf-8")) == text


@given(st.text(st.sampled_from([*_KANA_KANJI, *"ｱｲｳｴｵ abc123"]), max_size=30))
def test_decode_bytes_reads_cp932_back(text: str) -> None:
    raw = text.encode("cp932")
    assume(raw.isascii() or not _is_utf8(raw))
    assert decode_bytes(raw) == text


@given(
    st.sampled_from(["ER", "G"]),
    st.integers(0, 999),
    st.sampled_from(["", "ER:", "ER: "]),
    st.sampled_from(["", " ", "\r\n"]),
)
def test_rt0_error_codes_are_read_with_or_without_prefix(
    kind: str, number: int, prefix: str, blank: str
) -> None:
    code = f"ER{number:03d}" if kind == "ER" else f"G{number % 100:02d}"
    r = parse_rt0_body(f"{blank}{prefix}{code}{blank}".encode())
    assert (r.accepted, r.code) == (False, code)


@given(st.text(max_size=20))
def test_rt0_reads_ok_or_a_code_or_refuses(body: str) -> None:
    try:
        r = parse_rt0_body(body)
    except CodecError:
        return
    assert r.accepted == (body.strip().upper() == "OK")
    assert r.accepted or (r.code is not None and r.code in body)


@given(st.integers(min_value=0, max_value=10**18 - 1), st.sampled_from(["", " ", "\t", "\r\n"]))
def test_to_int_reads_plain_integers(value: int, blank: str) -> None:
    assert to_int(f"{blank}{value}{blank}") == value


# ASCII, full-width, Arabic-Indic and Devanagari digits.
@given(st.text(st.sampled_from("0123456789０１２３٠١٢३४"), min_size=1, max_size=8))
def test_to_int_refuses_digits_other_than_ascii(text: str) -> None:
    # int() would read '１２３' or '١٢٣'; an amount from the wire must be plain ASCII.
    assert to_int(text) == (int(text) if text.isascii() else None)
