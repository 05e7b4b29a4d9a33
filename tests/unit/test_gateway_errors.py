"""Every gateway error code maps to a stable code and messages a person can act on."""

from __future__ import annotations

import re

import pytest

from app.gateway.base import Outcome
from app.gateway.codes import KNOWN_CODES, is_decline, lookup, outcome_for

# Seed 000 p.26, seeds 002/003 and research section 1.4.
SEED_AND_RESEARCH_CODES = [
    "ER000", "ER001", "ER002", "ER003", "ER004", "ER005", "ER010", "ER013", "ER014", "ER015",
    "ER016", "ER017", "ER018", "ER021", "ER024", "ER030", "ER031", "ER032", "ER033", "ER042",
    "ER050", "ER051", "ER052", "ER053", "ER054", "ER055", "ER056", "ER057", "ER058", "ER059",
    "ER060", "ER061", "ER062", "ER063", "ER064", "ER065", "ER066", "ER069", "ER079",
    "ER107", "ER114", "ER117", "ER119", "ER125", "ER126", "ER127", "ER128", "ER129",
    "ER147", "ER148", "ER149", "ER150", "ER554", "ER559", "ER564", "ER565", "ER567",
    "ER583", "ER584", "ER585", "ER586", "ER590",
    "ER651", "ER652", "ER653", "ER654", "ER655", "ER656",
    "ER900", "ER901", "ER902", "ER903", "ER904", "ER905", "ER998", "ER999",
    "ER400", "ER401", "ER500", "ER520",
    "G12", "G30", "G42", "G44", "G45", "G54", "G55", "G56", "G60", "G61", "G65", "G68", "G69",
    "G74", "G83", "G97", "G98", "G99",
]  # fmt: skip

PARAMETER_FIELDS = {
    "ER050": "aid", "ER051": "jb", "ER052": "rt", "ER053": "tid", "ER054": "cod", "ER055": "cn",
    "ER056": "ed", "ER057": "fn", "ER058": "ln", "ER059": "em", "ER060": "pn", "ER061": "am",
    "ER062": "tx", "ER063": "sf", "ER064": "md", "ER065": "pt", "ER066": "iid", "ER069": "cmd",
    "ER079": "cvv",
}  # fmt: skip

_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


@pytest.mark.parametrize("code", SEED_AND_RESEARCH_CODES)
def test_every_documented_code_is_known(code: str) -> None:
    assert code in KNOWN_CODES
    assert lookup(code).code == code


@pytest.mark.parametrize("code", sorted(KNOWN_CODES))
def test_entries_are_complete(code: str) -> None:
    info = KNOWN_CODES[code]
    assert info.code == code
    assert _SNAKE.fullmatch(info.stable_code)
    assert len(info.message_en) > 20 and info.message_en.endswith(".")
    assert _JAPANESE.search(info.message_ja), "the Japanese message must be Japanese"
    assert info.http_status in (402, 409, 422, 502, 503, 504)


@pytest.mark.parametrize(("code", "field"), sorted(PARAMETER_FIELDS.items()))
def test_parameter_errors_name_their_field(code: str, field: str) -> None:
    info = lookup(code)
    assert f"({field})" in info.message_en
    assert f"({field})" in info.message_ja
    assert info.http_status == 422 and not info.retryable


@pytest.mark.parametrize(
    ("code", "stable", "status", "retryable"),
    [
        ("G12", "card_declined", 402, False),
        ("G55", "insufficient_limit", 402, False),
        ("G83", "card_expired", 402, False),
        ("G44", "incorrect_cvv", 402, False),
        ("ER584", "token_invalid", 422, False),
        ("ER585", "token_expired", 422, False),
        ("ER586", "card_data_with_token", 422, False),
        ("ER003", "source_ip_rejected", 502, False),
        ("ER004", "shop_not_configured", 502, False),
        ("ER900", "three_ds_failed", 402, False),
        ("ER652", "duplicate_customer", 409, False),
        ("ER653", "customer_deleted", 409, False),
        ("ER032", "already_captured", 409, False),
        ("ER999", "maintenance", 503, True),
        ("ER059", "invalid_email", 422, False),
        ("ER069", "invalid_parameter", 422, False),
        ("ER520", "search_too_many_results", 422, False),
        ("timeout", "gateway_timeout", 504, False),
        ("connect_error", "gateway_unavailable", 503, True),
        ("http_error", "gateway_http_error", 502, False),
        ("bad_response", "gateway_bad_response", 502, False),
    ],
)
def test_key_mappings(code: str, stable: str, status: int, retryable: bool) -> None:
    info = lookup(code)
    assert (info.stable_code, info.http_status, info.retryable) == (stable, status, retryable)


def test_card_company_messages_do_not_reveal_fraud_flags() -> None:
    # A lost/stolen card (G60) must read like any other refusal to the shopper.
    assert lookup("G60").message_en == lookup("G12").message_en
    assert "stolen" not in lookup("G60").message_en.lower()


@pytest.mark.parametrize(
    ("code", "stable", "status"),
    [
        ("G01", "card_declined", 402),
        ("G300", "card_declined", 402),
        ("ER077", "invalid_parameter", 422),
        ("ER123", "gateway_error", 502),
        ("ER910", "gateway_error", 502),
        ("XYZ", "gateway_error", 502),
        ("", "gateway_error", 502),
    ],
)
def test_unknown_codes_keep_the_raw_code(code: str, stable: str, status: int) -> None:
    info = lookup(code)
    assert info.code == code
    assert (info.stable_code, info.http_status, info.retryable) == (stable, status, False)
    assert info.message_en and _JAPANESE.search(info.message_ja)
    if code and not code.startswith("G"):  # declines read the same to the shopper
        assert code in info.message_en


def test_lookup_normalizes_case_and_blanks() -> None:
    assert lookup(" er584 ").stable_code == "token_invalid"
    assert lookup("g55").stable_code == "insufficient_limit"


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("G12", Outcome.DECLINED),
        ("G99", Outcome.DECLINED),
        ("ER900", Outcome.DECLINED),
        ("ER905", Outcome.DECLINED),
        ("ER906", Outcome.FAILED),
        ("ER584", Outcome.FAILED),
        ("ER003", Outcome.FAILED),
        ("ER999", Outcome.UNAVAILABLE),
        ("", Outcome.FAILED),
    ],
)
def test_outcome_for_codes(code: str, outcome: Outcome) -> None:
    assert outcome_for(code) is outcome
    assert is_decline(code) is (outcome is Outcome.DECLINED)
