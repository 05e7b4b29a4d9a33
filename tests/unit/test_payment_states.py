"""Every allowed and forbidden payment transition."""

from __future__ import annotations

import itertools

import pytest

from app.payments.states import ALLOWED, InvalidTransition, Status, check_transition, is_forward

EXPECTED = {
    ("pending", "authorized"),
    ("pending", "captured"),
    ("pending", "failed"),
    ("pending", "unknown"),
    ("pending", "canceled"),
    ("unknown", "authorized"),
    ("unknown", "captured"),
    ("unknown", "failed"),
    ("unknown", "canceled"),
    ("authorized", "captured"),
    ("authorized", "canceled"),
    ("captured", "canceled"),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_transition_table(current: Status, target: Status) -> None:
    allowed = (current.value, target.value) in EXPECTED
    assert is_forward(current, target) is allowed
    if allowed:
        assert check_transition(current, target) == target
    else:
        with pytest.raises(InvalidTransition) as info:
            check_transition(current, target)
        assert info.value.current == current


def test_terminal_states_have_no_way_out() -> None:
    assert ALLOWED[Status.CANCELED] == frozenset()
    assert ALLOWED[Status.FAILED] == frozenset()


def test_nothing_moves_backwards_to_pending_or_unknown() -> None:
    for status in Status:
        assert not is_forward(status, Status.PENDING)
    assert not is_forward(Status.CAPTURED, Status.AUTHORIZED)
    assert not is_forward(Status.AUTHORIZED, Status.UNKNOWN)
