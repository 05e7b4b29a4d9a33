"""The SBPS simulator's own wire helpers (app/sandbox/sbps/wire.py, fields.py): XML reading with
DTDs and entities refused, the answer writer, sps_hashcode, and the value checks."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.sandbox.clock import JST
from app.sandbox.sbps import codes, fields
from app.sandbox.sbps.wire import Item, WireError, parse, render, sps_hashcode

DECL = b'<?xml version="1.0" encoding="Shift_JIS"?>\n'
KEY = "k" * 40

# What a Japanese shop's values hold: kana, kanji, JIS symbols, ASCII (no tab, CR, LF).
_ALPHABET = "あいうえおんアイウエオン漢字注文番号株式会社東京ー・「」、。＠ abcXYZ019-_.&<>"
_VALUE = st.text(st.sampled_from(list(_ALPHABET)), max_size=20)
_TAG = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True)


def _items(depth: int = 2) -> st.SearchStrategy[list[Item]]:
    leaf = st.tuples(_TAG, _VALUE)
    if depth == 0:
        return st.lists(leaf, min_size=1, max_size=4)
    block = st.tuples(_TAG, _items(depth - 1))
    return st.lists(st.one_of(leaf, block), min_size=1, max_size=4)


def _flat(items: list[Item]) -> list[str]:
    out: list[str] = []
    for _tag, value in items:
        out.extend([value] if isinstance(value, str) else _flat(list(value)))
    return out


def _request(inner: str, id_: str = "MG01-00101-101") -> bytes:
    return DECL + f'<sps-api-request id="{id_}">{inner}</sps-api-request>'.encode("shift_jis")


@given(_items())
def test_render_then_parse_gives_the_values_back_in_document_order(items: list[Item]) -> None:
    root = parse(render("sps-api-response", items, id_="X"))
    assert root.tag == "sps-api-response" and root.attrs == {"id": "X"}
    assert [leaf.text for _path, leaf in root.leaves()] == _flat(items)


@given(st.lists(_VALUE, max_size=8), st.text(st.sampled_from("abc123"), min_size=1, max_size=40))
def test_hash_is_sha1_of_the_stripped_values_then_the_key(values: list[str], key: str) -> None:
    expected = hashlib.sha1(("".join(v.strip() for v in values) + key).encode("shift_jis"))
    assert sps_hashcode(values, key) == expected.hexdigest()
    assert sps_hashcode([f"  {v} " for v in values], key) == expected.hexdigest()


@given(_VALUE.filter(lambda v: v.strip() != ""))
def test_multibyte_values_are_decoded_before_the_hash(name: str) -> None:
    encoded = base64.b64encode(name.encode("shift_jis")).decode()
    body = _request(f"<order_id>o1</order_id><item_name>{encoded}</item_name>")
    request = fields.read_request(parse(body))
    assert request.get("item_name") == name.strip()
    assert request.hash_input() == ["o1", name.strip()]


def test_empty_elements_are_written_short_and_ng_has_no_id() -> None:
    body = render("sps-api-response", [("res_result", "NG"), ("res_err_code", "")])
    assert body == DECL + b"<sps-api-response><res_result>NG</res_result><res_err_code/>" + (
        b"</sps-api-response>"
    )
    assert b"&lt;&amp;&gt;" in render("r", [("a", "<&>")])


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>',
        b'<!DOCTYPE r SYSTEM "http://example.invalid/r.dtd"><r/>',
        b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>',
        b"<r>&undefined;</r>",
        b'<?xml version="1.0" encoding="UTF-8"?><r/>',
        DECL + b"<r>\x82</r>",  # a lead byte without its trail byte
        b"<r>text<a/></r>",
        b"<r/><s/>",
        b"not xml",
        b"<r>" + b"x" * 70_000 + b"</r>",
    ],
)
def test_hostile_or_broken_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(WireError):
        parse(body)


def test_values_with_tab_cr_lf_and_spaced_numbers_are_attribute_errors() -> None:
    for inner, item in (
        ("<order_id>a\tb</order_id>", "004"),
        ("<order_id>a&#13;b</order_id>", "004"),
        ("<cust_code>\n  c1\n</cust_code>", "003"),
        ("<amount>10 00</amount>", "008"),
        ("<item_name>not base64!</item_name>", "006"),
    ):
        with pytest.raises(codes.SbpsError) as caught:
            fields.read_request(parse(_request(inner)))
        assert caught.value.code == f"10104{item}"


def test_blocks_are_flattened_and_whitespace_between_elements_is_no_value() -> None:
    body = _request(
        "\n  <pay_method_info>\n    <dealings_type>10</dealings_type>\n  </pay_method_info>\n"
        "  <pay_option_manage><token> t </token><token_key>k</token_key></pay_option_manage>"
    )
    request = fields.read_request(parse(body))
    assert request.values == [
        ("pay_method_info/dealings_type", "10"),
        ("pay_option_manage/token", "t"),
        ("pay_option_manage/token_key", "k"),
    ]


def test_check_hash() -> None:
    values = [("merchant_id", "30132"), ("order_id", "o1")]
    digest = sps_hashcode([v for _, v in values], KEY)
    good = fields.Request("ST02-00101-101", [*values, ("sps_hashcode", digest.upper())])
    fields.check_hash(good, KEY)  # either case
    bad = fields.Request("ST02-00101-101", [*values, ("sps_hashcode", "0" * 40)])
    with pytest.raises(codes.SbpsError) as caught:
        fields.check_hash(bad, KEY)
    assert caught.value.code == "10109999"


@pytest.mark.parametrize(
    ("age", "limit", "refused"),
    [(0, "600", False), (599, "600", False), (601, "600", True), (61, "60", True),
     (599, "", False), (-200, "600", False), (-400, "600", True)],
)  # fmt: skip
def test_request_date(age: int, limit: str, refused: bool) -> None:
    now = datetime(2026, 12, 4, 12, 0, 0, tzinfo=JST)
    stamp = fields.jst_stamp(now - timedelta(seconds=age))
    request = fields.Request("MG01-00101-101", [("request_date", stamp), ("limit_second", limit)])

    def check() -> None:
        fields.check_request_date(request, now, default_limit=600, future_tolerance=300)

    if refused:
        with pytest.raises(codes.SbpsError, match="10110999"):
            check()
    else:
        check()


@pytest.mark.parametrize(
    ("path", "value", "code"),
    [
        ("merchant_id", "3013", "10105001"),
        ("merchant_id", "3013a", "10104001"),
        ("amount", "12345678", "10105008"),
        ("pay_method_info/dealings_type", "99", "10107020"),
        ("encrypted_flg", "1", "10107026"),
        ("pay_option_manage/ok_return_url", "javascript:alert(1)", "10104035"),
        ("item_name", "あ" * 21, "10105006"),  # 42 Shift_JIS bytes > 40
    ],
)
def test_field_rules(path: str, value: str, code: str) -> None:
    request = fields.Request("ST01-00131-101", [(path, value)])
    with pytest.raises(codes.SbpsError) as caught:
        fields.validate(request, ())
    assert caught.value.code == code


def test_required_elements() -> None:
    request = fields.Request("ST01-00131-101", [("order_id", "o1")])
    with pytest.raises(codes.SbpsError) as caught:
        fields.validate(request, ("order_id", "pay_option_manage/token"))
    assert caught.value.code == "10103022"
