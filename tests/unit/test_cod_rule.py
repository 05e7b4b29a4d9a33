"""The order id (cod) rule: 半角英数または日本語, 50 bytes (seed 000). Our API's reading
(app/fields.py) and the simulator's (app/sandbox/validate.py) are written apart on purpose; what
the API accepts must never be refused by the gateway, and both refuse the seed's outsiders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.fields import cod_problem
from app.payments.service import cod_for
from app.sandbox import validate
from app.sandbox.codes import GatewayError


def simulator_accepts(value: str) -> bool:
    try:
        validate.cod(value)
    except GatewayError:
        return False
    return True


ACCEPTED = [
    "order42",
    "ORDER",
    "0",
    "注文番号１２３",
    "ご注文ー々",
    "ＡＢＣ",
    "x" * 50,
    "注" * 16 + "ab",
]
REFUSED = [
    "order-42",
    "order_42",
    "order 42",
    "order.42",
    "注文　1",  # ideographic space
    "ﾁｭｳﾓﾝ",  # half-width katakana
    "注文！",  # full-width punctuation
    "😀",
    "Ω",
    "x" * 51,
    "注" * 17,  # 51 bytes in UTF-8 (34 in Shift_JIS)
    "a,b",
    "a\nb",
]


@pytest.mark.parametrize("value", ACCEPTED)
def test_the_seeds_cod_is_accepted_by_both(value: str) -> None:
    assert cod_problem(value) is None
    assert simulator_accepts(value)


@pytest.mark.parametrize("value", REFUSED)
def test_what_the_seed_refuses_is_refused_by_both(value: str) -> None:
    assert cod_problem(value) is not None
    assert not simulator_accepts(value)


@given(st.text(max_size=60))
def test_the_gateway_never_refuses_an_order_id_the_api_accepted(value: str) -> None:
    if cod_problem(value) is None:
        assert simulator_accepts(value)


@given(st.text(alphabet="abc-_ 注文ｱ", max_size=20))
def test_both_readings_agree(value: str) -> None:
    if value:
        assert (cod_problem(value) is None) == simulator_accepts(value)


def test_the_default_cod_is_our_id_without_its_underscore() -> None:
    assert cod_for(None, "pay_0123456789abcdef0123456789abcdef") == (
        "pay0123456789abcdef0123456789abcdef"
    )
    assert cod_problem(cod_for(None, "pay_0123456789abcdef0123456789abcdef")) is None
    assert cod_for("注文1", "pay_x") == "注文1"
