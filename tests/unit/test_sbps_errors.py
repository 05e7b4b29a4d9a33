"""SBPS error codes -> GatewayErrorInfo, and the token JS's codes (app/gateway/sbps/errors.py,
token_errors.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.gateway.base import ErrorKind, GatewayErrorInfo, Outcome
from app.gateway.sbps import errors, token_errors

_TYPES = [f"{n:02d}" for n in range(100)] + [f"{a}{b}" for a in "KT" for b in "0123456789"]
_ITEMS = ["000", "001", "003", "004", "008", "025", "200", "202", "999", "X1Z"]


def _readable(info: GatewayErrorInfo) -> None:
    assert info.message_en.strip() and info.message_ja.strip()
    assert info.stable_code.replace("_", "").isalnum() and info.stable_code.islower()
    assert 400 <= info.http_status <= 599


@pytest.mark.parametrize("type_", _TYPES)
@pytest.mark.parametrize("item", _ITEMS)
def test_every_credit_code_maps(type_: str, item: str) -> None:
    code = f"101{type_}{item}"
    info = errors.lookup(code)
    assert info.code == code
    _readable(info)
    assert errors.outcome_for(code) in {
        Outcome.DECLINED,
        Outcome.FAILED,
        Outcome.UNKNOWN,
        Outcome.UNAVAILABLE,
    }


@pytest.mark.parametrize("code", sorted(errors.MAINTENANCE_CODES))
def test_maintenance_codes_are_not_processed(code: str) -> None:
    info = errors.lookup(code)
    assert info.kind is ErrorKind.UNAVAILABLE
    assert info.retryable
    assert info.http_status == 503
    assert errors.outcome_for(code) is Outcome.UNAVAILABLE
    assert "課金はされていません" in info.message_ja


@pytest.mark.parametrize(
    ("code", "stable", "kind", "outcome"),
    [
        ("101T1999", "token_invalid", ErrorKind.TOKEN_INVALID, Outcome.FAILED),
        ("101T2999", "token_expired", ErrorKind.TOKEN_INVALID, Outcome.FAILED),
        ("10109999", "hash_mismatch", ErrorKind.MISCONFIGURED, Outcome.FAILED),
        ("10110999", "request_expired", ErrorKind.MISCONFIGURED, Outcome.FAILED),
        ("10193999", "too_many_attempts", ErrorKind.DECLINED, Outcome.DECLINED),
        ("10196999", "duplicate_request", ErrorKind.CONFLICT, Outcome.UNKNOWN),
        ("10141999", "already_captured", ErrorKind.STALE_VIEW, Outcome.FAILED),
        ("10140999", "already_canceled", ErrorKind.STALE_VIEW, Outcome.FAILED),
        ("10179999", "amount_over_authorization", ErrorKind.INVALID, Outcome.FAILED),
        ("101K1999", "amount_over_sales", ErrorKind.INVALID, Outcome.FAILED),
        ("10122999", "insufficient_limit", ErrorKind.DECLINED, Outcome.DECLINED),
        ("10161999", "incorrect_cvv", ErrorKind.DECLINED, Outcome.DECLINED),
        ("10190999", "gateway_system_error", ErrorKind.UNKNOWN, Outcome.UNKNOWN),
        ("101D1999", "three_ds_failed", ErrorKind.THREE_DS_FAILED, Outcome.DECLINED),
        ("10195999", "card_not_found", ErrorKind.CARD_UNKNOWN, Outcome.FAILED),
        ("10105202", "invalid_length", ErrorKind.INVALID, Outcome.FAILED),
        ("10103001", "missing_parameter", ErrorKind.MISCONFIGURED, Outcome.FAILED),
    ],
)
def test_the_codes_the_domain_acts_on(
    code: str, stable: str, kind: ErrorKind, outcome: Outcome
) -> None:
    info = errors.lookup(code)
    assert (info.stable_code, info.kind) == (stable, kind)
    assert errors.outcome_for(code) is outcome


def test_item_errors_name_the_element_and_the_neutral_field() -> None:
    info = errors.lookup("10103008")
    assert "amount" in info.message_en and "金額" in info.message_ja
    assert info.fields == ("amount",)
    assert errors.lookup("10104004").fields == ("order_id",)
    assert errors.lookup("10179999").fields == ("amount",)


def test_hash_mismatch_says_what_to_check() -> None:
    info = errors.lookup("10109999")
    assert not info.retryable
    assert "hash key" in info.message_en and "ハッシュキー" in info.message_ja


@given(st.text(max_size=12))
def test_any_code_gets_an_entry_naming_it(code: str) -> None:
    info = errors.lookup(code)
    _readable(info)
    if info.stable_code == "gateway_error":
        shown = code.strip().upper()
        assert (shown or "no code") in info.message_en


def test_unknown_code_is_generic_and_keeps_the_code() -> None:
    info = errors.lookup("999ZZ999")
    assert info.stable_code == "gateway_error"
    assert "999ZZ999" in info.message_en and "999ZZ999" in info.message_ja
    assert errors.outcome_for("999ZZ999") is Outcome.FAILED


def test_synthetic_codes_come_from_the_shared_table() -> None:
    assert errors.lookup("timeout").kind is ErrorKind.TIMEOUT
    assert errors.lookup("bad_response").kind is ErrorKind.UNKNOWN


# --- the token JS (seed 004) -------------------------------------------------------------


@pytest.mark.parametrize("type_", token_errors.TYPES)
@pytest.mark.parametrize("item", token_errors.ITEMS)
def test_every_token_code_has_a_page_message(type_: str, item: str) -> None:
    message = token_errors.KNOWN_CODES[type_ + item]
    assert message.code == type_ + item
    assert message.message_ja and message.message_en
    # The merchant/service ids and system errors are not the shopper's to fix.
    assert message.shopper_fixable == (type_ != "99" and item not in ("001", "002"))


def test_token_messages_name_the_field() -> None:
    assert token_errors.message_for("03003").message_ja == "カード番号を入力してください。"
    assert token_errors.message_for("05005").message_en.startswith("The security code")
    assert "ショップ" in token_errors.message_for("07001").message_ja


def test_unknown_token_code_is_generic_and_named() -> None:
    message = token_errors.message_for("12345")
    assert "12345" in message.message_ja and "12345" in message.message_en
