"""What a charges-search row proves, and which row belongs to a payment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.gateway.base import ChargeRecord
from app.payments.states import Status
from app.reconcile.matching import MATCH_WINDOW, Wanted, find, status_of
from tests.support.search_rows import charge_record

T0 = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)


def row(gid: int, **kw: object) -> ChargeRecord:
    values: dict[str, object] = {"jb": "AUTH", "rst": 1, "cod": "order1", "ta": 1580, "cd": T0}
    values.update(kw)
    return charge_record(gid=gid, **values)


@pytest.mark.parametrize(
    ("jb", "rst", "status"),
    [
        ("AUTH", 1, Status.AUTHORIZED),
        ("CHECK", 1, Status.AUTHORIZED),
        ("SALES", 1, Status.CAPTURED),
        ("CAPTURE", 1, Status.CAPTURED),
        ("CANCEL", 1, Status.CANCELED),
        ("AUTH", 4, Status.FAILED),
        ("CAPTURE", 5, Status.FAILED),
        ("AUTH", 2, None),  # not processed yet: no conclusion
        ("AUTH", 3, None),  # waiting
        ("AUTH", None, None),
        ("???", 1, None),
    ],
)
def test_status_of_a_search_row(jb: str, rst: int | None, status: Status | None) -> None:
    assert status_of(row(1, jb=jb, rst=rst)) == status


def test_match_by_gid_ignores_everything_else() -> None:
    wanted = Wanted(gid=7, cod="other", total=1, created_at=T0 - timedelta(days=30))
    assert find(wanted, [row(6), row(7)]).record == row(7)
    assert find(wanted, [row(6)]).record is None


def test_match_by_cod_amount_and_time() -> None:
    wanted = Wanted(gid=None, cod="order1", total=1580, created_at=T0)
    rows = [
        row(1, cod="order2"),
        row(2, ta=1000),
        row(3, cd=T0 + MATCH_WINDOW + timedelta(seconds=1)),
        row(4, cod="order1 "),  # the gateway's own samples carry a trailing space
    ]
    assert find(wanted, rows).record == rows[3]


def test_gids_of_other_payments_are_skipped_and_two_candidates_are_ambiguous() -> None:
    wanted = Wanted(gid=None, cod="order1", total=1580, created_at=T0, exclude_gids=frozenset({1}))
    assert find(wanted, [row(1), row(2)]).record == row(2)
    both = find(wanted, [row(2), row(3)])
    assert both.record is None and both.ambiguous
    none = find(wanted, [])
    assert none.record is None and not none.ambiguous


def test_product_payments_match_without_amount() -> None:
    wanted = Wanted(gid=None, cod="order1", total=None, created_at=T0)
    assert find(wanted, [row(5, ta=999)]).record == row(5, ta=999)
