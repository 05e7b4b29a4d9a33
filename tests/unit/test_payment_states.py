"""Every allowed and forbidden payment transition."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from app.payments.states import (
    ALLOWED,
    InvalidTransition,
    Operation,
    OperationNotAllowed,
    ReauthRefusal,
    Status,
    check_operation,
    check_resolution,
    check_transition,
    is_forward,
    months_apart_jst,
    reauth_refusal,
)

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


OPERATIONS = {
    (Operation.CAPTURE, "authorized"): "captured",
    (Operation.CANCEL, "authorized"): "canceled",
    (Operation.CANCEL, "captured"): "canceled",
    (Operation.REAUTHORIZE, "authorized"): "canceled",
    (Operation.REAUTHORIZE, "captured"): "canceled",
}


@pytest.mark.parametrize(("operation", "current"), list(itertools.product(Operation, Status)))
def test_operations_ops_may_request(operation: Operation, current: Status) -> None:
    expected = OPERATIONS.get((operation, current.value))
    if expected is not None:
        assert check_operation(operation, current) == Status(expected)
        return
    with pytest.raises(OperationNotAllowed) as info:
        check_operation(operation, current)
    # The API answers 409 with the current status, so it must travel with the error.
    assert info.value.current == current
    assert str(current) in str(info.value) and operation.value in str(info.value)


def test_capturing_pending_or_unknown_is_refused_though_evidence_may_capture_them() -> None:
    # A kickback may say an unknown payment was captured; ops may not send SALES for it.
    assert is_forward(Status.UNKNOWN, Status.CAPTURED)
    with pytest.raises(OperationNotAllowed):
        check_operation(Operation.CAPTURE, Status.UNKNOWN)


RESOLUTIONS = {
    (current, target)
    for current in ("pending", "unknown")
    for target in ("authorized", "captured", "canceled", "failed")
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
@pytest.mark.parametrize("flagged", [False, True])
def test_manual_resolution(current: Status, target: Status, flagged: bool) -> None:
    allowed = (current.value, target.value) in RESOLUTIONS or (
        flagged
        and target in (Status.AUTHORIZED, Status.CAPTURED, Status.CANCELED, Status.FAILED)
        and ((current.value, target.value) in EXPECTED or current == target)
    )
    if allowed:
        assert check_resolution(current, target, flagged=flagged) == target
    else:
        with pytest.raises(InvalidTransition):
            check_resolution(current, target, flagged=flagged)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("created", "now", "months"),
    [
        # 2026-01-31 14:59 UTC is 23:59 JST: still January in Japan.
        (utc(2026, 1, 31, 14, 59), utc(2026, 2, 28, 0, 0), 1),
        # 2026-01-31 15:00 UTC is 2026-02-01 00:00 JST: already February.
        (utc(2026, 1, 31, 15, 0), utc(2026, 2, 1, 0, 0), 0),
        (utc(2025, 12, 31, 15, 0), utc(2026, 2, 10, 0, 0), 1),  # 2026-01-01 JST
        (utc(2025, 12, 31, 14, 59), utc(2026, 2, 10, 0, 0), 2),  # 2025-12-31 JST
        (utc(2025, 11, 15), utc(2026, 1, 15), 2),
    ],
)
def test_months_are_counted_in_japan_time(created: datetime, now: datetime, months: int) -> None:
    assert months_apart_jst(created, now) == months


@pytest.mark.parametrize(
    ("item_code", "job", "created", "now", "refusal"),
    [
        (None, "AUTH", utc(2026, 3, 1), utc(2026, 3, 20), None),  # this month
        (None, "CAPTURE", utc(2026, 2, 1), utc(2026, 3, 31), None),  # last month
        (None, "AUTH", utc(2026, 1, 31, 15, 0), utc(2026, 3, 31, 14, 59), None),  # Feb 1 JST
        (None, "AUTH", utc(2026, 1, 31, 14, 59), utc(2026, 3, 1), ReauthRefusal.TOO_OLD),
        (None, "AUTH", utc(2025, 12, 20), utc(2026, 2, 1), ReauthRefusal.TOO_OLD),
        ("ITEM-1", "AUTH", utc(2026, 3, 1), utc(2026, 3, 2), ReauthRefusal.PRODUCT_REGISTERED),
        (None, "CHECK", utc(2026, 3, 1), utc(2026, 3, 2), ReauthRefusal.NOT_A_CHARGE),
    ],
)
def test_reauthorization_policy(
    item_code: str | None,
    job: str,
    created: datetime,
    now: datetime,
    refusal: ReauthRefusal | None,
) -> None:
    assert reauth_refusal(item_code=item_code, job=job, created_at=created, now=now) == refusal
