"""Magic test cards: Luhn-valid, distinct, documented."""

from __future__ import annotations

import pytest

from app.sandbox import cards


def test_every_magic_card_is_a_luhn_valid_16_digit_number() -> None:
    numbers = [c.number for c in cards.MAGIC_CARDS.values()]
    assert len(numbers) == len(set(numbers)) == 8
    for number in numbers:
        assert len(number) == 16 and cards.luhn_valid(number), number


def test_named_constants_match_the_table() -> None:
    expected = {
        "CARD_OK": cards.CARD_OK,
        "CARD_DECLINE_G12": cards.CARD_DECLINE_G12,
        "CARD_DECLINE_G55": cards.CARD_DECLINE_G55,
        "CARD_DECLINE_G83": cards.CARD_DECLINE_G83,
        "CARD_3DS_CHALLENGE": cards.CARD_3DS_CHALLENGE,
        "CARD_3DS_FAIL": cards.CARD_3DS_FAIL,
        "CARD_SLOW": cards.CARD_SLOW,
        "CARD_TIMEOUT": cards.CARD_TIMEOUT,
    }
    assert cards.CARD_OK == "4444333322221111"
    assert {c.name: c.number for c in cards.MAGIC_CARDS.values()} == expected
    rows = cards.describe()
    assert [r["name"] for r in rows] == list(expected)
    assert all(r["outcome"] and r["outcome_ja"] for r in rows)


def test_outcomes() -> None:
    assert cards.lookup(cards.CARD_DECLINE_G55).decline == "G55"
    assert cards.lookup(cards.CARD_3DS_CHALLENGE).three_ds == "challenge"
    assert cards.lookup(cards.CARD_TIMEOUT).speed == "timeout"
    assert cards.lookup("5555555555554444").decline is None


@pytest.mark.parametrize(
    ("number", "brand"),
    [
        ("4444333322221111", 1),
        ("5555555555554444", 2),
        ("3530111333300000", 3),
        ("378282246310005", 4),
        ("30569309025904", 5),
        ("6011111111111117", 6),
        ("9999999999999995", 0),
    ],
)
def test_brand_codes(number: str, brand: int) -> None:
    assert cards.brand_code(number) == brand


def test_luhn_rejects_a_changed_digit() -> None:
    assert not cards.luhn_valid("4444333322221112")
    assert not cards.luhn_valid("44443333x2221111")
