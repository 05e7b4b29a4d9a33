"""Property tests: the decoders never crash on arbitrary input, and round-trip real values."""

from __future__ import annotations

import contextlib
from urllib.parse import quote_from_bytes

from hypothesis import assume, given
from hypothesis import strategies as st

from app.gateway.robotpayment.codec import (
    CodecError,
    decode_bytes,
    parse_carduser_response,
    parse_kickback,
    parse_payment_response,
    parse_query_bytes,
)

# Kana, kanji, full-width forms and ASCII: what a Japanese shop's free parameters hold.
_JAPANESE = st.characters(
    categories=("L", "N", "P", "S", "Zs"),
    include_characters="あいうえおアイウエオ注文番号テスト株式会社ー・「」、。",
)
# Text a CP932 (Shift_JIS) system would actually send: kana, kanji, JIS symbols, ASCII.
_SHIFT_JIS_ALPHABET = "あいうえおんアイウエオン漢字注文番号株式会社東京ー・「」、。＠ abc019-_."
_SHIFT_JIS_TEXT = st.text(st.sampled_from(list(_SHIFT_JIS_ALPHABET)), max_size=30)
_KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,9}", fullmatch=True)


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@given(st.binary(max_size=300))
def test_query_bytes_never_raises(raw: bytes) -> None:
    params = parse_query_bytes(raw)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())


@given(st.binary(max_size=200))
def test_decode_bytes_never_raises(raw: bytes) -> None:
    assert isinstance(decode_bytes(raw), str)


@given(st.dictionaries(_KEYS, st.text(_JAPANESE, max_size=30), min_size=1, max_size=6))
def test_query_bytes_round_trips_utf8(values: dict[str, str]) -> None:
    raw = "&".join(f"{k}={quote_from_bytes(v.encode('utf-8'))}" for k, v in values.items()).encode(
        "ascii"
    )
    assert parse_query_bytes(raw) == values


@given(st.dictionaries(_KEYS, _SHIFT_JIS_TEXT, min_size=1, max_size=6))
def test_query_bytes_round_trips_cp932(values: dict[str, str]) -> None:
    encoded: dict[str, bytes] = {}
    for key, value in values.items():
        raw_value = value.encode("cp932")
        # A CP932 byte string that is also valid UTF-8 (e.g. pure ASCII, or some half-width
        # kana pairs) is ambiguous by nature; the UTF-8 reading is the documented one.
        assume(raw_value.isascii() or not _is_utf8(raw_value))
        encoded[key] = raw_value
    raw = "&".join(f"{k}={quote_from_bytes(v)}" for k, v in encoded.items()).encode("ascii")
    assert parse_query_bytes(raw) == values


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_payment_parser_raises_only_codec_error(body: bytes | str) -> None:
    with contextlib.suppress(CodecError):
        parse_payment_response(body)


_FIELD = st.text(st.characters(exclude_characters=","), max_size=12)


@given(st.lists(st.one_of(_FIELD, st.sampled_from(["1", "2", "0", "", "ER584", "k=v"]))))
def test_payment_parser_on_comma_lines_raises_only_codec_error(fields: list[str]) -> None:
    try:
        r = parse_payment_response(",".join(fields))
    except CodecError:
        return
    assert r.rst in (1, 2) and r.gid >= 0


@given(
    st.sampled_from(["user", "card", "user_info", "card_info"]),
    st.one_of(st.binary(max_size=200), st.text(max_size=200)),
)
def test_carduser_parser_raises_only_codec_error(kind: str, body: bytes | str) -> None:
    with contextlib.suppress(CodecError):
        parse_carduser_response(kind, body)  # type: ignore[arg-type]


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=20)))
def test_kickback_parser_never_raises(params: dict[str, str]) -> None:
    k = parse_kickback(params)
    assert k.gid is None or k.gid >= 0
    assert set(k.extras) <= set(params)
