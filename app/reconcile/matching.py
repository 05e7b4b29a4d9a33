"""Pure rules: which charges-search row is a payment's (what a row says: payments.evidence)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.gateway.base import ChargeRecord
from app.payments.evidence import MATCH_WINDOW, status_of

# The status a search row proves and the match window live with the evidence rules in
# payments (payments and kickbacks use them too, and neither may import reconcile).
__all__ = ["MATCH_WINDOW", "Match", "Wanted", "find", "search_range", "status_of"]


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
