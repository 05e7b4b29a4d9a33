"""sps_hashcode, request layouts and credentials (app/gateway/sbps/{hashcode,apis,credentials})."""

from __future__ import annotations

import base64
import hashlib
import pickle
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.gateway.sbps import apis
from app.gateway.sbps.chars import FieldKind, SbpsValueError, kind_of
from app.gateway.sbps.codec import Node, decode_multibyte, parse_document
from app.gateway.sbps.credentials import Credentials
from app.gateway.sbps.elements import Block, Leaf
from app.gateway.sbps.hashcode import (
    HashKey,
    hash_values,
    request_date,
    sps_hashcode,
)

SECRET = "c0ffee5ecret1234567890abcdef0123456789ab"
KEY = HashKey(SECRET)
NOW = datetime(2026, 12, 4, 9, 30, 5, tzinfo=UTC)  # 18:30:05 in Japan

AUTH_VALUES: dict[str, object] = {
    "merchant_id": "30132",
    "service_id": "001",
    "cust_code": "cust-1",
    "order_id": "order-1",
    "item_id": "item_1",
    "item_name": "テスト商品&",
    "amount": 1250,
    "sps_cust_info_return_flg": "1",
    "dtls": [
        {"dtl_rowno": "1", "dtl_item_id": "a", "dtl_item_name": "品1", "dtl_amount": "500"},
        {"dtl_rowno": "2", "dtl_item_id": "b", "dtl_amount": "750"},
    ],
    "pay_method_info": {"dealings_type": "10"},
    "pay_option_manage": {"token": "TOKEN", "token_key": "KEY", "cust_manage_flg": "0"},
    "encrypted_flg": "0",
}


def _leaf_values(raw: bytes) -> dict[str, str]:
    return {node.name: node.text for node in parse_document(raw).children if not node.children}


def test_hash_of_a_known_document_follows_the_rule() -> None:
    document = apis.build_request(apis.CREDIT_AUTHORIZE, AUTH_VALUES, key=KEY, now=NOW)
    # The rule written out: every value in document order, blocks flattened, the M values
    # before Base64 (and after replacement: & -> ＆), then the key; Shift_JIS; SHA-1.
    material = (
        "30132" + "001" + "cust-1" + "order-1" + "item_1" + "テスト商品＆" + "1250" + "1"
        + "1" + "a" + "品1" + "500"
        + "2" + "b" + "750"
        + "10"
        + "TOKEN" + "KEY" + "0"
        + "0" + "20261204183005" + "600"
        + SECRET
    )  # fmt: skip
    expected = hashlib.sha1(material.encode("cp932")).hexdigest()
    values = _leaf_values(document)
    assert values["sps_hashcode"] == expected
    assert values["request_date"] == "20261204183005"
    assert values["limit_second"] == "600"
    assert re.fullmatch(r"[0-9a-f]{40}", expected)


def test_elements_follow_the_layout_order_not_the_mapping_order() -> None:
    shuffled = dict(reversed(list(AUTH_VALUES.items())))
    document = apis.build_request(apis.CREDIT_AUTHORIZE, shuffled, key=KEY, now=NOW)
    names = [node.name for node in parse_document(document).children]
    assert names == [
        "merchant_id",
        "service_id",
        "cust_code",
        "order_id",
        "item_id",
        "item_name",
        "amount",
        "sps_cust_info_return_flg",
        "dtls",
        "pay_method_info",
        "pay_option_manage",
        "encrypted_flg",
        "request_date",
        "limit_second",
        "sps_hashcode",
    ]
    assert document == apis.build_request(apis.CREDIT_AUTHORIZE, AUTH_VALUES, key=KEY, now=NOW)


def test_nested_blocks_are_flattened_in_order() -> None:
    elements = (
        Leaf("a", "1"),
        Block("b", (Leaf("c", "2"), Block("d", (Leaf("e", "3"),)), Leaf("f", "4"))),
        Leaf("g", "5"),
        Leaf("sps_hashcode", "ignored"),
    )
    assert list(hash_values(elements)) == ["1", "2", "3", "4", "5"]
    expected = hashlib.sha1(("12345" + SECRET).encode("cp932")).hexdigest()
    assert sps_hashcode(elements, KEY) == expected


def test_values_are_stripped_of_ascii_spaces_only() -> None:
    elements = (Leaf("cust_code", " a "), Leaf("item_name", "\u3000b\u3000"))
    material = "a" + "\u3000b\u3000" + SECRET
    assert sps_hashcode(elements, KEY) == hashlib.sha1(material.encode("cp932")).hexdigest()


def test_multibyte_values_are_hashed_before_base64() -> None:
    document = apis.build_request(
        apis.CARD_DELETE, {"merchant_id": "30132", "service_id": "001"}, key=KEY, now=NOW
    )
    with_name = apis.build_request(
        apis.CREDIT_AUTHORIZE,
        {"merchant_id": "30132", "service_id": "001", "item_name": "品"},
        key=KEY,
        now=NOW,
    )
    values = _leaf_values(with_name)
    assert base64.b64decode(values["item_name"]).decode("cp932") == "品"
    material = "30132001品20261204183005600" + SECRET
    assert values["sps_hashcode"] == hashlib.sha1(material.encode("cp932")).hexdigest()
    assert _leaf_values(document)["sps_hashcode"] != values["sps_hashcode"]


def test_absent_and_empty_values_are_not_sent() -> None:
    elements = apis.build_elements(
        apis.CREDIT_AUTHORIZE,
        {"merchant_id": "30132", "tax": None, "free1": "", "dtls": [], "pay_method_info": {}},
    )
    assert elements == (Leaf("merchant_id", "30132"),)


def test_unknown_and_generated_elements_are_refused() -> None:
    with pytest.raises(ValueError, match="amonut"):
        apis.build_elements(apis.COMMIT, {"amonut": "1"})
    with pytest.raises(ValueError, match="toke"):
        apis.build_elements(apis.CREDIT_AUTHORIZE, {"pay_option_manage": {"toke": "x"}})
    with pytest.raises(ValueError, match="sps_hashcode"):
        apis.build_request(apis.COMMIT, {"sps_hashcode": "x"}, key=KEY, now=NOW)
    with pytest.raises(TypeError):
        apis.build_elements(apis.COMMIT, {"tracking_id": True})


def test_tab_in_a_value_is_refused_before_sending() -> None:
    with pytest.raises(SbpsValueError):
        apis.build_request(apis.CREDIT_AUTHORIZE, {"item_name": "a\tb"}, key=KEY, now=NOW)


def test_every_layout_is_complete() -> None:
    names = {
        "ST01-00131-101", "ST02-00101-101", "ST02-00201-101", "ST02-00305-101",
        "ST02-00303-101", "ST02-00307-101", "MG01-00101-101", "MG02-00131-101",
        "MG02-00104-101", "MG02-00103-101", "ST01-00133-101", "TA02-00101-101",
        "ST01-00118-101",
    }  # fmt: skip
    assert set(apis.LAYOUTS) == names
    for request_id, layout in apis.LAYOUTS.items():
        assert layout[:2] == ("merchant_id", "service_id"), request_id
        assert layout[-3:] == ("request_date", "limit_second", "sps_hashcode"), request_id
        document = apis.build_request(
            request_id, {"merchant_id": "30132", "service_id": "001"}, key=KEY, now=NOW
        )
        assert parse_document(document).attributes == {"id": request_id}


def test_request_date_is_japan_time_and_needs_an_aware_datetime() -> None:
    assert request_date(NOW) == "20261204183005"
    with pytest.raises(ValueError):
        request_date(datetime(2026, 12, 4, 9, 30, 5))


def test_basic_auth_user_is_merchant_plus_service_and_password_the_key() -> None:
    credentials = Credentials("30132", "001", KEY)
    assert credentials.username == "30132001"
    header = credentials.authorization_header()
    assert header.startswith("Basic ")
    assert base64.b64decode(header[6:]).decode() == f"30132001:{SECRET}"
    with pytest.raises(SbpsValueError):
        Credentials("3013", "001", KEY)
    with pytest.raises(SbpsValueError):
        Credentials("30132", "1", KEY)


def test_the_secret_appears_in_no_repr_or_str() -> None:
    credentials = Credentials("30132", "001", KEY)
    shown = [repr(KEY), str(KEY), f"{KEY}", repr(credentials), str(credentials), repr([KEY])]
    assert all(SECRET not in text for text in shown)
    with pytest.raises(TypeError):
        pickle.dumps(KEY)
    with pytest.raises(SbpsValueError) as refused:
        HashKey("bad\nkey")
    assert "bad" not in str(refused.value)
    assert HashKey(SECRET) == KEY
    assert HashKey(SECRET + "x") != KEY


_HALF = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
_TEXT = st.text(st.characters(blacklist_characters="\t\r\n"), max_size=20)


def _sent_values(raw: bytes) -> list[tuple[str, str]]:
    """(name, value) of every leaf as SBPS reads it: M values Base64-decoded."""

    def walk(node: Node) -> list[tuple[str, str]]:
        if not node.children:
            value = node.text
            if kind_of(node.name) is FieldKind.MULTIBYTE:
                value = decode_multibyte(value)
            return [(node.name, value)]
        return [pair for child in node.children for pair in walk(child)]

    return walk(parse_document(raw))


@given(_HALF, _TEXT, _TEXT, st.integers(min_value=0, max_value=10**9))
def test_the_hash_covers_exactly_what_is_sent(
    order_id: str, item_name: str, dtl_name: str, amount: int
) -> None:
    values = {
        "merchant_id": "30132",
        "service_id": "001",
        "order_id": order_id,
        "item_name": item_name,
        "amount": amount,
        "dtls": [{"dtl_rowno": "1", "dtl_item_name": dtl_name}],
    }
    document = apis.build_request(apis.CREDIT_AUTHORIZE, values, key=KEY, now=NOW)
    sent = _sent_values(document)
    assert sent[-1][0] == "sps_hashcode"
    material = "".join(value.strip(" ") for _, value in sent[:-1]) + SECRET
    assert sent[-1][1] == hashlib.sha1(material.encode("cp932")).hexdigest()
    assert SECRET.encode() not in document


def test_an_error_about_a_request_never_carries_the_key() -> None:
    with pytest.raises(SbpsValueError) as refused:
        apis.build_request(apis.CREDIT_AUTHORIZE, {"amount": "1 0"}, key=KEY, now=NOW)
    assert SECRET not in str(refused.value) and SECRET not in repr(refused.value)
