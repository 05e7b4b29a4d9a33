"""No token, card number, CVV or user key survives masking."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from app.gateway.masking import (
    mask_header_value,
    mask_key_field,
    mask_params,
    mask_text,
    mask_token,
)

TOKEN = "U0K1ZZY2RsZEN6Wm1pTnBRejdvVHhJaQ==" * 2 + "abcdefghijklmnopqrst"
PAN = "4444333322221111"


def test_mask_params_masks_secrets_and_keeps_the_rest() -> None:
    masked = mask_params(
        {"aid": "123456", "tkn": TOKEN, "cn": PAN, "cvv": "123", "key": "vnjpBycDO5",
         "am": "1000", "cod": "order1", "memo": f"card {PAN} pls"}
    )  # fmt: skip
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    assert masked["tkn"] == f"tkn(len={len(TOKEN)},sha256={digest})"
    assert masked["cn"] == "************1111"
    assert masked["cvv"] == "***"
    assert masked["key"] == "vn***"
    assert (masked["aid"], masked["am"], masked["cod"]) == ("123456", "1000", "order1")
    assert masked["memo"] == "card ************1111 pls"
    flat = repr(masked)
    assert TOKEN not in flat and TOKEN[:16] not in flat
    assert PAN not in flat and "vnjpBycDO5" not in flat and "123'" not in flat


def test_mask_params_keeps_order() -> None:
    assert list(mask_params({"b": "1", "tkn": "x", "a": "2"})) == ["b", "tkn", "a"]


def test_mask_token_is_stable_for_correlation() -> None:
    assert mask_token(TOKEN) == mask_token(TOKEN)
    assert mask_token(TOKEN) != mask_token(TOKEN + "x")


def test_mask_text_scrubs_written_card_numbers() -> None:
    text = f"a {PAN} b 4444 3333 2222 1111 c 4444-3333-2222-1111 d 371449635398431 e"
    masked = mask_text(text)
    assert "3333" not in masked and "371449635398431" not in masked
    assert masked.count("************1111") == 3
    assert "************8431" in masked


def test_mask_text_leaves_ids_amounts_and_dates_alone() -> None:
    text = "gid=1095729,god=205685,am=1000,2026-01-15T14:15:27,tel 0312345678,12345678901234567890"
    assert mask_text(text) == text


def test_mask_key_field() -> None:
    assert mask_key_field("1,,u1,vnjpBycDO5,1\r\n", 3) == "1,,u1,vn***,1\r\n"
    assert mask_key_field("2,ER652,u1,", 3) == "2,ER652,u1,"
    assert mask_key_field("2,ER652", 3) == "2,ER652"
    assert mask_key_field(f"1,,u,k1,1,{PAN}", 3) == "1,,u,k1***,1,************1111"


def test_mask_header_value() -> None:
    key = "a31200ac90ba49789248-1fd48d654e97"
    assert mask_header_value(key) == f"a312***(len={len(key)})"
    assert key not in mask_header_value(key)
    assert mask_header_value("short") == "***(len=5)"


@given(
    st.from_regex(r"[0-9]{13,19}", fullmatch=True),
    st.text(st.characters(categories=("L", "Zs", "P")), max_size=20),
    st.text(st.characters(categories=("L", "Zs", "P")), max_size=20),
)
def test_no_pan_survives_mask_text(pan: str, before: str, after: str) -> None:
    masked = mask_text(before + pan + after)
    assert pan not in masked
    assert pan[:-4] not in masked


@given(st.text(st.characters(codec="ascii", exclude_characters="\x00"), min_size=1, max_size=100))
def test_no_token_survives_mask_params(token: str) -> None:
    masked = mask_params({"tkn": token, "cn": token, "cvv": token})
    assert set(masked["cvv"]) == {"*"}
    assert masked["tkn"].startswith("tkn(len=")
    if len(token) > 8:
        assert token not in masked["tkn"] and token not in masked["cn"]
