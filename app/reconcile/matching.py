"""Pure rules: what a charges-search row says about a payment, and which row is ours.

The provider reads its own result codes into the row's neutral `status` (for ROBOT PAYMENT:
app/gateway/robotpayment/search.charge_status); this module only maps it to ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.gateway.base import ChargeRecord, ChargeStatus
from app.payments.states import Status

# How far around our row's creation the gateway's record of the same charge may lie: the
# charge is made after our row is committed (checkout) or just before it (a re-authorization
# whose answer was lost), within one gateway deadline (about 40 s); clocks drift a little.
MATCH_WINDOW = timedelta(minutes=10)


# A search row's neutral status (set by the provider) as the payment status it proves.
_PROVES: dict[ChargeStatus, Status] = {
    ChargeStatus.AUTHORIZED: Status.AUTHORIZED,
    ChargeStatus.CAPTURED: Status.CAPTURED,
    ChargeStatus.CANCELED: Status.CANCELED,
    ChargeStatus.FAILED: Status.FAILED,
}


def status_of(record: ChargeRecord) -> Status | None:
    """The status a search row proves, or None while the gateway has not settled it."""
    return _PROVES.get(record.status)


@dataclass(frozen=True, slots=True)
class Wanted:
    """What we know of a payment whose gid may be missing."""

    gid: int | None
    cod: str
    total: int | None  # None for product-registered payments: the product sets the price
    created_at: datetime
    exclude_gids: frozenset[int] = frozenset()  # gids that belong to other payments


@dataclass(frozen=True, slots=True)
class Match:
    record: ChargeRecord | None
    ambiguous: bool = False


def find(wanted: Wanted, records: Iterable[ChargeRecord]) -> Match:
    """By gid when we have it; else by cod + amount + creation time. Two candidates for one
    payment are never guessed between: that needs a person."""
    rows: Sequence[ChargeRecord] = list(records)
    if wanted.gid is not None:
        for row in rows:
            if row.charge_id == wanted.gid:
                return Match(row)
        return Match(None)
    lo, hi = wanted.created_at - MATCH_WINDOW, wanted.created_at + MATCH_WINDOW
    candidates = [
        row
        for row in rows
        if row.charge_id not in wanted.exclude_gids
        and (row.order_ref or "").strip() == wanted.cod
        and (wanted.total is None or row.total == wanted.total)
        and (row.created_at is None or lo <= row.created_at <= hi)
    ]
    if len(candidates) == 1:
        return Match(candidates[0])
    return Match(None, ambiguous=len(candidates) > 1)


def search_range(created_at: datetime) -> tuple[datetime, datetime]:
    return created_at - MATCH_WINDOW, created_at + MATCH_WINDOW
