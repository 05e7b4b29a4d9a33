"""Pure rules: what a charges-search row says about a payment, and which row is ours.

Seed 003 `rst`: 1 success, 2 not processed yet, 3 waiting, 4 failed, 5 error (the rest are
convenience-store and postal codes that never apply to a card). `jb` is the payment's job as
it stands now: AUTH/CHECK, SALES/CAPTURE once captured, CANCEL once canceled.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.gateway.base import ChargeRecord
from app.payments.states import Status

# How far around our row's creation the gateway's record of the same charge may lie: the
# charge is made after our row is committed (checkout) or just before it (a re-authorization
# whose answer was lost), within one gateway deadline (about 40 s); clocks drift a little.
MATCH_WINDOW = timedelta(minutes=10)


def status_of(record: ChargeRecord) -> Status | None:
    """The status a search row proves, or None while the gateway has not settled it."""
    if record.rst in (4, 5):
        return Status.FAILED
    if record.rst != 1:
        return None
    match (record.jb or "").upper():
        case "CANCEL":
            return Status.CANCELED
        case "SALES" | "CAPTURE":
            return Status.CAPTURED
        case "AUTH" | "CHECK":
            return Status.AUTHORIZED
        case _:
            return None


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
            if row.gid == wanted.gid:
                return Match(row)
        return Match(None)
    lo, hi = wanted.created_at - MATCH_WINDOW, wanted.created_at + MATCH_WINDOW
    candidates = [
        row
        for row in rows
        if row.gid not in wanted.exclude_gids
        and (row.cod or "").strip() == wanted.cod
        and (wanted.total is None or row.ta == wanted.total)
        and (row.cd is None or lo <= row.cd <= hi)
    ]
    if len(candidates) == 1:
        return Match(candidates[0])
    return Match(None, ambiguous=len(candidates) > 1)


def search_range(created_at: datetime) -> tuple[datetime, datetime]:
    return created_at - MATCH_WINDOW, created_at + MATCH_WINDOW
