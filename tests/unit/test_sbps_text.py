"""SBPS text rules (app/gateway/sbps/chars.py): what a value may hold before it is sent."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.gateway.sbps.chars import (
    REPLACEMENT,
    SbpsValueError,
    check_value,
    replace_text,
)
from app.gateway.sbps.codec import decode_multibyte, encode_request, parse_document
from app.gateway.sbps.elements import Leaf

_PLATFORM = ((0x8740, 0x879E), (0xED40, 0xEEFC), (0xF040, 0xF9FC), (0xFA40, 0xFC4B))
_SPECIALS = set("^`{|}~&<>\"'")
# Any text but the three refused characters: what a shopper or merchant could type or paste.
_ANY_TEXT = st.text(st.characters(blacklist_characters="\t\r\n"), max_size=40)
_JAPANESE = st.text(
    st.sampled_from(list("あいうえおアイウエオ漢字注文番号株式会社ー・「」、。ｱｲｳ abcABC019-_.")),
    max_size=30,
)


def _is_sendable(text: str) -> bool:
    raw = text.encode("cp932")  # raises if not encodable
    if raw.decode("cp932") != text:
        return False
    index = 0
    while index < len(raw):
        byte = raw[index]
        if byte >= 0x80 and not 0xA1 <= byte <= 0xDF:
            code = byte << 8 | raw[index + 1]
            if any(low <= code <= high for low, high in _PLATFORM):
                return False
            index += 2
        else:
            index += 1
    return not (_SPECIALS & set(text)) and all(c >= " " and c != "\x7f" for c in text)


@given(_ANY_TEXT)
def test_replaced_text_is_sendable_and_stable(text: str) -> None:
    replaced = replace_text(text)
    assert _is_sendable(replaced)
    assert replace_text(replaced) == replaced


@given(_ANY_TEXT)
def test_multibyte_round_trip_gives_back_the_replaced_text(text: str) -> None:
    replaced = replace_text(text)
    document = encode_request("ST01-00131-101", [Leaf("item_name", text)])
    node = parse_document(document)
    (leaf,) = node.children
    assert decode_multibyte(leaf.text) == replaced
    assert base64.b64decode(leaf.text) == replaced.encode("cp932")


@given(_JAPANESE)
def test_ordinary_japanese_is_kept_as_is(text: str) -> None:
    assert replace_text(text) == text


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40))
def test_half_width_values_round_trip_through_xml(text: str) -> None:
    document = encode_request("ST02-00101-101", [Leaf("order_id", text)])
    (leaf,) = parse_document(document).children
    assert leaf.text == text


@given(st.integers(min_value=0, max_value=10**12))
def test_numeric_values_round_trip(amount: int) -> None:
    document = encode_request("ST02-00201-101", [Leaf("amount", str(amount))])
    (leaf,) = parse_document(document).children
    assert int(leaf.text) == amount


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A&B <tag> \"q\" 'q' ^`{|}~", "A＆B ＜tag＞ ”q” ’q’ ＾｀｛｜｝～"),
        ("①②", "12"),  # NEC specials 0x8740-: their compatibility form
        ("㈱テスト", "(株)テスト"),
        ("ⅰⅱ", "iii"),  # IBM extension 0xFA40-
        ("髙橋", "?橋"),  # 髙 is only in the IBM extensions, with no compatibility form
        ("Café", "Cafe"),
        ("〜", "～"),  # WAVE DASH: CP932 carries (and reads back) the full-width tilde
        ("¥100", "￥100"),
        ("\u304b\u3099", "が"),  # decomposed が
        ("\ue000", REPLACEMENT),  # private use: CP932's user-defined area
        ("\x00\x1b", REPLACEMENT * 2),
        ("😀", REPLACEMENT),
        ("\ud800", REPLACEMENT),  # a lone surrogate
        ("a\u200db\ufeffc\u200e", "abc"),  # zero-width joiner, BOM, LRM: dropped
        ("❤\ufe0f", REPLACEMENT),  # the variation selector is dropped, the heart replaced
    ],
)
def test_replacements(text: str, expected: str) -> None:
    assert replace_text(text) == expected


@pytest.mark.parametrize("name", ["item_name", "order_id", "amount", "free1", "token"])
@pytest.mark.parametrize("bad", ["a\tb", "a\rb", "a\nb", "\n"])
def test_tab_cr_lf_are_refused_in_every_field(name: str, bad: str) -> None:
    with pytest.raises(SbpsValueError):
        check_value(name, bad)


@pytest.mark.parametrize("bad", [" 100", "100 ", "1 000", "１００", "-1", "1.0", "１"])
def test_numeric_fields_take_ascii_digits_only(bad: str) -> None:
    with pytest.raises(SbpsValueError):
        check_value("amount", bad)


@pytest.mark.parametrize("bad", ["注文1", "ｱ", "a\x00"])
def test_half_width_fields_refuse_other_characters(bad: str) -> None:
    with pytest.raises(SbpsValueError):
        check_value("order_id", bad)


def test_half_width_specials_are_escaped_not_changed() -> None:
    url = "https://shop.example/return?a=1&b=<2>"
    document = encode_request("TA02-00101-101", [Leaf("ok_return_url", url)])
    assert b"a=1&amp;b=&lt;2&gt;" in document
    assert parse_document(document).children[0].text == url
