"""The card-data detector (app/carddata.py): every way a card number is written is found and
redacted, in text and in bytes; our own ids, gateway numbers, amounts and dates are not."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.carddata import contains_card, luhn_ok, redact_bytes, redact_text, refuse_card_data

PAN = "4111111111111111"
GROUPS = ["4111", "1111", "1111", "1111"]
WRITTEN = [
    PAN,
    " ".join(GROUPS),
    "-".join(GROUPS),
    ".".join(GROUPS),
    "+".join(GROUPS),
    "%20".join(GROUPS),
    "%2D".join(GROUPS),
    "%2d".join(GROUPS),
    "%2B".join(GROUPS),
    "%2520".join(GROUPS),
    quote(" ".join(GROUPS)),
    quote_plus(" ".join(GROUPS)),
    "".join(f"%{ord(c):02X}" for c in PAN),  # every digit percent-encoded
    "\u3000".join("".join(chr(ord(c) + 0xFEE0) for c in g) for g in GROUPS),  # full width
    "378282246310005",  # 15-digit Amex
    "3782 822463 10005",
    "6011111111111117",
    "4000000000000000006",  # 19 digits
]


@pytest.mark.parametrize("written", WRITTEN)
@pytest.mark.parametrize(
    "context", ["{}", "cn={}&x=1", "x={}", "note: {} end", '{{"card": "{}"}}', "a=%20{}%20"]
)
def test_every_written_form_is_found_and_redacted(written: str, context: str) -> None:
    text = context.format(written)
    assert contains_card(text), text
    redacted = redact_text(text)
    assert not contains_card(redacted), redacted
    digits = "".join(c for c in redacted if c.isdigit())
    assert "111111111111" not in digits and "82246310" not in digits, redacted
    as_bytes = redact_bytes(text.encode())
    assert not contains_card(as_bytes.decode()), as_bytes


def test_the_last_four_digits_stay_for_people_to_recognise() -> None:
    assert redact_text(f"card {PAN} end") == "card ************1111 end"
    assert redact_text("4111 1111 1111 1111") == "************1111"
    assert redact_bytes(b"memo=4111+1111+1111+1111&am=1") == b"memo=************1111&am=1"


def test_a_card_followed_by_more_digit_groups_is_found() -> None:
    assert contains_card("4111 1111 1111 1111 2030")
    assert contains_card("ref 12 4111-1111-1111-1111")


def test_card_fields_are_found_by_name() -> None:
    for text in (
        "cn=4111&x=1",
        "cvv=987",
        "CVV=987",
        "securitycode=987",
        "a=1&card_number=12ab",
        '{"cvv": "987"}',
        "{'cvc': 987}",
        "cvv%3D987",
    ):
        assert contains_card(text), text
        assert "987" not in redact_text(text) and "4111" not in redact_text(text), text
        assert b"987" not in redact_bytes(text.encode()), text
    assert redact_text("gid=1&cvv=987&cn=4111111111111111") == "gid=1&cvv=***&cn=***"
    assert redact_bytes(b"cvv=987&am=1000") == b"cvv=***&am=1000"
    # Already masked values and words that merely contain a name are left alone.
    for text in ("cvv=***", "cn=***&x", "scn=1", "acvv=2", "cnt=3", "the cvv field"):
        assert not contains_card(text), text
        assert redact_text(text) == text


@pytest.mark.parametrize(
    "clean",
    [
        "pay_3ba1234567890123456f00d",
        "cs_1234567890123456",
        "x4111111111111111",
        "4111111111111111abc",
        "order_4111111111111111",
        "gid=109572912345,god=205685,am=1000,tx=80",
        "2026-01-15T14:15:27.123456+09:00",
        "2026-01-15 14:15:27.123456",
        "tel 0312345678 / 090-1234-5678",
        "12345678901234567890",  # 20 digits: not a card number
        "4111111111111112",  # Luhn fails
        "10.0.0.1 10.0.0.2",
        "************1111",
        "tkn(len=36,sha256=0a1b2c3d)",
        "%E3%81%82%E3%81%84",
    ],
)
def test_ids_amounts_dates_and_masked_values_are_not_card_data(clean: str) -> None:
    assert not contains_card(clean)
    assert redact_text(clean) == clean
    assert redact_bytes(clean.encode()) == clean.encode()


@given(st.binary(max_size=300))
def test_bytes_that_are_not_touched_come_back_unchanged(data: bytes) -> None:
    redacted = redact_bytes(data)
    if not contains_card(data.decode("latin-1")):
        assert redacted == data


@given(st.text(st.characters(codec="utf-8"), max_size=200))
def test_redacted_text_holds_no_card_data(text: str) -> None:
    assert not contains_card(redact_text(text))


def test_pathological_input_is_linear() -> None:
    # Each of these used to be a quadratic scan; they must finish (no timing assertion).
    for text in ("1 " * 20000 + "x", "1" * 100000 + "x", "a1b2c3 " * 10000, "%20" * 30000):
        redact_text(text)
        redact_bytes(text.encode())


def test_luhn() -> None:
    assert luhn_ok([int(c) for c in PAN])
    assert not luhn_ok([int(c) for c in "4111111111111112"])


def test_the_merchant_field_validator_refuses_card_data() -> None:
    assert refuse_card_data("order42") == "order42"
    with pytest.raises(ValueError, match="looks like a card number"):
        refuse_card_data("order 4111-1111-1111-1111")
