"""ROBOT PAYMENT wire codec: every layout the seeds and public integrations show."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from app.gateway.robotpayment.codec import (
    CodecError,
    decode_bytes,
    encode_form,
    parse_bare_code,
    parse_carduser_response,
    parse_kickback,
    parse_payment_response,
    parse_query_bytes,
    parse_rt0_body,
    to_int,
)

# --- payment answers ---------------------------------------------------------------------


def test_seed_002_success_sample() -> None:
    r = parse_payment_response("1095729,1,TestMod,,205685,,1000,2,4,1006,,,")
    assert (r.gid, r.rst, r.ap, r.ec, r.god, r.cod) == (1095729, 1, "TestMod", None, "205685", None)
    assert (r.am, r.tx, r.sf, r.ta) == (1000, 2, 4, 1006)
    assert (r.id, r.ps, r.uid, r.key, r.num) == (None, None, None, None, None)
    assert r.extras == {}


def test_three_ds_failure_sample() -> None:
    r = parse_payment_response("0,2,,ER900,,,0,0,0,0,,,")
    assert (r.gid, r.rst, r.ec, r.ap, r.am, r.ta) == (0, 2, "ER900", None, 0, 0)


def test_support_site_sample_with_eleven_fields() -> None:
    r = parse_payment_response("30486154,1,000306,,30485311,,1000,0,0,1000,")
    assert (r.gid, r.ap, r.god, r.am, r.ta) == (30486154, "000306", "30485311", 1000, 1000)


def test_free_parameter_echo_sample() -> None:
    r = parse_payment_response("181418,1,0001112,,181357,7c3cb103,0,0,0,0,,,memo=goods-code-01")
    assert r.cod == "7c3cb103"
    assert r.extras == {"memo": "goods-code-01"}
    assert r.id is None and r.ps is None


@pytest.mark.parametrize(
    "body",
    [
        "1095729,1,TestMod,,205685,,1000,2,4,1006,,,\r\n",
        "1095729,1,TestMod,,205685,,1000,2,4,1006,,,\n",
        "1095729,1,TestMod,,205685,,1000,2,4,1006",
        "1095729,1,TestMod,,205685,,1000,2,4,1006,",
        "1095729,1,TestMod,,205685,,1000,2,4,1006,,,,,,,,,",
        "\ufeff1095729,1,TestMod,,205685,,1000,2,4,1006,,,",
        b"1095729,1,TestMod,,205685,,1000,2,4,1006,,,\r\n",
    ],
)
def test_tolerates_line_endings_and_field_counts(body: str | bytes) -> None:
    r = parse_payment_response(body)
    assert (r.gid, r.rst, r.ap, r.god, r.ta) == (1095729, 1, "TestMod", "205685", 1006)


@pytest.mark.parametrize("count", [11, 12, 13, 14])
def test_eleven_to_fourteen_fields(count: int) -> None:
    fields = ["5", "1", "AP1", "", "6", "order1", "100", "10", "0", "110", "ID", "PW", "", ""]
    r = parse_payment_response(",".join(fields[:count]))
    assert (r.gid, r.cod, r.ta) == (5, "order1", 110)
    assert r.id == "ID"
    assert r.ps == ("PW" if count >= 12 else None)


def test_registration_fields_then_extras() -> None:
    r = parse_payment_response(
        "77,1,AP,,78,ord,500,0,0,500,,,shopper01,vnjpBycDO5,2,memo=x,campaign=spring\r\n"
    )
    assert (r.uid, r.key, r.num) == ("shopper01", "vnjpBycDO5", 2)
    assert r.extras == {"memo": "x", "campaign": "spring"}


def test_extras_may_start_right_after_ta() -> None:
    r = parse_payment_response("77,1,AP,,78,,500,0,0,500,memo=x")
    assert r.id is None
    assert r.extras == {"memo": "x"}


def test_extra_values_keep_their_commas() -> None:
    r = parse_payment_response("77,1,AP,,78,,500,0,0,500,,,note=a,b,,c,next=1,")
    assert r.extras == {"note": "a,b,,c", "next": "1"}


def test_equals_sign_inside_the_positional_part_is_not_an_extra() -> None:
    r = parse_payment_response("77,1,AP,,78,a=b,500,0,0,500,,,")
    assert r.cod == "a=b"
    assert r.extras == {}


def test_failure_with_card_company_code() -> None:
    r = parse_payment_response("0,2,,G55,,order9,1000,0,0,1000,,,")
    assert (r.rst, r.ec, r.cod) == (2, "G55", "order9")


def test_japanese_cod_in_utf8_and_cp932() -> None:
    line = "9,1,AP,,10,注文テスト,100,0,0,100,,,"
    assert parse_payment_response(line.encode("utf-8")).cod == "注文テスト"
    assert parse_payment_response(line.encode("cp932")).cod == "注文テスト"


def test_unparseable_amounts_become_none() -> None:
    r = parse_payment_response("9,1,AP,,10,,abc,,-5,,,,")
    assert (r.am, r.tx, r.sf, r.ta) == (None, None, None, None)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "   \r\n",
        b"",
        "OK",
        "<html><body>Server Error</body></html>",
        "abc,1,,,,,0,0,0,0",
        ",1,,,,,0,0,0,0",
        "1,3,,,,,0,0,0,0",
        "1,0,,,,,0,0,0,0",
        "1,,,,,,0,0,0,0",
        "1,1",
        "1,1,AP",
        "１２３,1,,,,,0,0,0,0",  # full-width digits are not a gid
        "9" * 40 + ",1,,,,,0,0,0,0",
    ],
)
def test_unreadable_payment_answers_raise_codec_error(body: str | bytes) -> None:
    with pytest.raises(CodecError):
        parse_payment_response(body)


# --- bare codes and rt=0 -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "accepted", "code"),
    [
        ("OK", True, None),
        ("OK\r\n", True, None),
        (b"ok", True, None),
        ("ER003", False, "ER003"),
        ("ER:ER003", False, "ER003"),
        ("ER:ER584\r\n", False, "ER584"),
        (b"ER999", False, "ER999"),
    ],
)
def test_rt0_bodies(body: str | bytes, accepted: bool, code: str | None) -> None:
    r = parse_rt0_body(body)
    assert (r.accepted, r.code) == (accepted, code)


@pytest.mark.parametrize("body", ["", "NG", "OK,1", "1095729,1,TestMod,,205685,,1000,2,4,1006"])
def test_rt0_garbage_raises(body: str) -> None:
    with pytest.raises(CodecError):
        parse_rt0_body(body)


def test_bare_code_detection() -> None:
    assert parse_bare_code("ER003") == "ER003"
    assert parse_bare_code(" ER:ER999 \n") == "ER999"
    assert parse_bare_code("G12") == "G12"
    assert parse_bare_code("0,2,,ER900,,,0,0,0,0,,,") is None
    assert parse_bare_code("ERROR") is None


# --- user and card answers ---------------------------------------------------------------


def test_seed_user_registration_example() -> None:
    r = parse_carduser_response("user", "1,,012345,vnjpBycDO5")
    assert (r.rst, r.ec, r.uid, r.key) == (1, None, "012345", "vnjpBycDO5")


def test_seed_card_registration_example() -> None:
    r = parse_carduser_response("card", "1,,012345,vnjpBycDO5,1\r\n")
    assert (r.uid, r.key, r.num) == ("012345", "vnjpBycDO5", 1)


def test_user_lookup_layout() -> None:
    r = parse_carduser_response("user_info", "1,,u1,KEY0000001,taro@example.com,0312345678,")
    assert (r.uid, r.key, r.em, r.pn) == ("u1", "KEY0000001", "taro@example.com", "0312345678")


def test_card_lookup_layout_with_extras() -> None:
    r = parse_carduser_response(
        "card_info", "1,,u1,KEY0000001,2,************1111,2912,TARO,YAMADA,memo=x"
    )
    assert (r.num, r.cn, r.ed, r.fn, r.ln) == (2, "************1111", "2912", "TARO", "YAMADA")
    assert r.extras == {"memo": "x"}


def test_carduser_error_may_be_shorter_than_its_layout() -> None:
    r = parse_carduser_response("card_info", "2,ER149,u1,KEY0000001,memo=x")
    assert (r.rst, r.ec, r.uid, r.num, r.cn) == (2, "ER149", "u1", None, None)
    assert r.extras == {"memo": "x"}
    assert parse_carduser_response("user", "2,ER652").ec == "ER652"


@pytest.mark.parametrize("body", ["", "OK", "3,,u,k", "x,ER000", "<html>"])
def test_carduser_garbage_raises(body: str) -> None:
    with pytest.raises(CodecError):
        parse_carduser_response("user", body)


# --- query strings and kickbacks ---------------------------------------------------------

SEED_KICKBACK = (
    b"gid=10000001&rst=1&ap=0001112&ec=&god=10000002&cod=test &am=1000&tx=80&sf=500&ta=1580"
)


def test_seed_kickback_sample() -> None:
    params = parse_query_bytes(SEED_KICKBACK)
    assert params["cod"] == "test "
    k = parse_kickback(params)
    assert (k.gid, k.rst, k.ap, k.ec, k.god, k.cod) == (
        10000001,
        1,
        "0001112",
        None,
        "10000002",
        "test ",
    )
    assert (k.am, k.tx, k.sf, k.ta, k.acid) == (1000, 80, 500, 1580, None)
    assert k.extras == {}


def test_kickback_with_recurring_and_free_parameters() -> None:
    raw = b"?gid=5&rst=2&ec=G55&cod=a+b&acid=1000000001&actp=4&memo=%E3%83%86%E3%82%B9%E3%83%88"
    k = parse_kickback(parse_query_bytes(raw))
    assert (k.gid, k.rst, k.ec, k.cod, k.acid) == (5, 2, "G55", "a b", 1000000001)
    assert k.extras == {"actp": "4", "memo": "テスト"}


@pytest.mark.parametrize(
    ("params", "gid", "rst"),
    [
        ({}, None, None),
        ({"rst": "1"}, None, 1),
        ({"gid": "x", "rst": "1"}, None, 1),
        ({"gid": "1"}, 1, None),
        ({"gid": "1", "rst": "ok", "am": "1,000"}, 1, None),
    ],
)
def test_malformed_kickback_is_kept_with_blanks(
    params: dict[str, str], gid: int | None, rst: int | None
) -> None:
    k = parse_kickback(params)
    assert (k.gid, k.rst, k.am) == (gid, rst, None)


def test_query_bytes_decodes_each_value_on_its_own() -> None:
    raw = (
        b"u=%E3%83%86%E3%82%B9%E3%83%88"  # UTF-8
        b"&s=%83e%83X%83g"  # CP932
        b"&plus=a+b%2Bc&empty=&flag&=orphan&u=second"
    )
    assert parse_query_bytes(raw) == {
        "u": "テスト",
        "s": "テスト",
        "plus": "a b+c",
        "empty": "",
        "flag": "",
    }


def test_query_bytes_tolerates_garbage() -> None:
    # Truncated UTF-8 and stray bytes fall back to CP932 (whatever it makes of them).
    params = parse_query_bytes(b"a=%zz%&b=%E3%83&&c=\xff\xfe")
    assert params["a"] == "%zz%"
    assert set(params) == {"a", "b", "c"}
    assert parse_query_bytes(b"") == {}


# --- primitives --------------------------------------------------------------------------


def test_encode_form_keeps_order_and_utf8() -> None:
    body = encode_form({"aid": "123456", "cod": "注文 1", "memo": "a&b=c\nd"})
    assert body.startswith(b"aid=123456&cod=")
    assert parse_qsl(body.decode("ascii"), encoding="utf-8") == [
        ("aid", "123456"),
        ("cod", "注文 1"),
        ("memo", "a&b=c\nd"),
    ]
    assert b" " not in body and b"\n" not in body


def test_decode_bytes_prefers_utf8_then_cp932() -> None:
    assert decode_bytes("テスト".encode()) == "テスト"
    assert decode_bytes("テスト".encode("cp932")) == "テスト"
    assert decode_bytes(b"\xef\xbb\xbfOK") == "OK"


def test_to_int() -> None:
    assert to_int(" 42 ") == 42
    assert to_int("") is None
    assert to_int(None) is None
    assert to_int("-1") is None
    assert to_int("４２") is None


def test_registration_answer_is_read_by_the_uid_in_either_layout() -> None:
    """Seed 000 pp.14, 19 list sf twice; GATEWAY.md once. The uid we sent places the rest."""
    one_sf = "101,1,AP1,,201,ord1,1000,80,500,1580,,,cust9,KEY123,2"
    two_sf = "101,1,AP1,,201,ord1,1000,80,500,1580,500,,,cust9,KEY123,2"
    for line in (one_sf, two_sf):
        r = parse_payment_response(line, "cust9")
        assert (r.uid, r.key, r.num, r.sf, r.ta) == ("cust9", "KEY123", 2, 500, 1580)
    # Without a uid to look for, GATEWAY.md's layout (as before).
    assert parse_payment_response(one_sf).key == "KEY123"
