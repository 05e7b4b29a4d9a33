"""Pure rules: what a kickback may do to the payment it matched, and what the charges search
must show before it may (no I/O here; service.py does the reading and writing).

A kickback is a claim ("gid G of this payment succeeded / failed"). It changes a payment only
when the claim is believable and moves it forward:
- a failed or canceled payment is never moved (a success for one is a contradiction, flagged);
- a success is believed from a trusted source when its amounts are the payment's, otherwise
  only once the search confirms it;
- a failure of a payment that may have been charged (pending, unknown) is always confirmed by
  the search first, trusted or not: failing it lets the shopper pay again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from app.gateway.base import ChargeRecord, EventStatus, GatewayEvent
from app.payments.evidence import MATCH_WINDOW, Claim, status_of, target_of
from app.payments.states import Status

OPEN = (Status.PENDING, Status.UNKNOWN)


@dataclass(frozen=True, slots=True)
class Facts:
    """What the rules need of a payment."""

    status: Status
    gid: int | None
    job: str
    amount: int
    tax: int
    shipping: int
    item_code: str | None

    @property
    def total(self) -> int:
        return self.amount + self.tax + self.shipping


PlanKind = Literal["done", "search", "settle", "contradiction"]


@dataclass(frozen=True, slots=True)
class Plan:
    """done: finish the kickback as `status` with `note`, change nothing. search: ask the
    charges search, then plan again with its verdict. settle: move the payment to `target`
    (None: only record the gid). contradiction: flag the payment for a person."""

    kind: PlanKind
    status: str = "applied"
    note: str | None = None
    target: Status | None = None


def amounts_match(p: Facts, k: GatewayEvent) -> bool:
    """Every amount given and equal to ours. A product-registered payment's price is the
    gateway's (our row holds what the merchant said), so it never matches here."""
    if p.item_code:
        return False
    given = (k.amount, k.tax, k.shipping, k.total)
    return None not in given and given == (p.amount, p.tax, p.shipping, p.total)


def plan(p: Facts, k: GatewayEvent, *, trusted: bool, confirmed: bool = False) -> Plan:
    """`confirmed`: the charges search has shown the claim true (see `judge`)."""
    gid = k.charge_id  # None: refused before any charge (a failed 3-D Secure)
    if p.gid is not None and gid is not None and gid != p.gid:
        return Plan("done", "flagged", f"it carries gid {gid}; the payment it names has {p.gid}")
    if k.status == EventStatus.FAILED:
        return _failure(p, gid, trusted=trusted, confirmed=confirmed)
    return _success(p, k, gid, trusted=trusted, confirmed=confirmed)


def _failure(p: Facts, gid: int | None, *, trusted: bool, confirmed: bool) -> Plan:
    if p.status == Status.FAILED:
        if p.gid is None and gid is not None:
            # Our record of the declined charge gets its gid; the status stays.
            if trusted or confirmed:
                return Plan("settle", note="payment already failed; its gid recorded")
            return Plan("search")
        return Plan("done", note="payment already failed; nothing to change")
    if p.status not in OPEN:
        return Plan("done", note=f"payment already {p.status}; nothing to change")
    if gid is None:
        return Plan(
            "done",
            "flagged",
            "a refusal without gid cannot be confirmed by the charges search; "
            "reconciliation settles the payment",
        )
    if confirmed:
        return Plan("settle", target=Status.FAILED)
    return Plan("search")


def _success(p: Facts, k: GatewayEvent, gid: int | None, *, trusted: bool, confirmed: bool) -> Plan:
    if p.status == Status.FAILED or (p.status == Status.CANCELED and p.gid != gid):
        if confirmed or (trusted and amounts_match(p, k)):
            return Plan("contradiction", "flagged", f"the gateway reports gid {gid} charged")
        return Plan("search")
    if p.status not in OPEN:
        return Plan("done", note=f"payment already {p.status}; nothing to change")
    if not p.item_code and k.total is not None and k.total != p.total:
        return Plan("done", "flagged", f"its total {k.total} is not the payment's {p.total}")
    if confirmed or (trusted and amounts_match(p, k)):
        return Plan("settle", target=target_of(Claim.SUCCEEDED, p.job))
    return Plan("search")


# --- what the charges search must show ----------------------------------------------------


class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    REFUTED = "refuted"  # the search shows something else: the claim is false
    UNSETTLED = "unsettled"  # the gateway has not settled that gid yet (rst 2, 3)
    MISSING = "missing"  # no such gid (yet)


@dataclass(frozen=True, slots=True)
class Expected:
    gid: int
    cod: str  # what we sent: the order id, or our payment id
    total: int | None  # None: product-registered, the gateway sets the price
    created_at: datetime
    success: bool  # what the kickback claims


def judge(expected: Expected, rows: Iterable[ChargeRecord]) -> tuple[Verdict, str]:
    """The search row of the claimed gid must be this payment's charge (its cod, total and
    time) and show what the kickback claims. gids are sequential and guessable: a real gid
    of someone else's charge proves nothing about this payment. Whether another payment of
    ours holds the gid is the caller's check (it needs the database)."""
    row = next((r for r in rows if r.charge_id == expected.gid), None)
    if row is None:
        return Verdict.MISSING, f"the charges search has no gid {expected.gid}"
    cod = (row.order_ref or "").strip()
    if cod != expected.cod:
        return Verdict.REFUTED, f"gid {row.charge_id} is another order's charge"
    if expected.total is not None and row.total != expected.total:
        return Verdict.REFUTED, f"gid {row.charge_id} is for {row.total} yen, not {expected.total}"
    if row.created_at is None or abs(row.created_at - expected.created_at) > MATCH_WINDOW:
        return Verdict.REFUTED, f"gid {row.charge_id} was not made when this payment was"
    shown = status_of(row)
    if shown is None:
        return Verdict.UNSETTLED, f"the gateway has not settled gid {row.charge_id} yet"
    # A canceled charge proves neither claim: it was charged, and it is no longer.
    if expected.success:
        agrees = shown in (Status.AUTHORIZED, Status.CAPTURED)
    else:
        agrees = shown == Status.FAILED
    if not agrees:
        return Verdict.REFUTED, f"the charges search shows gid {row.charge_id} {shown}"
    return Verdict.CONFIRMED, f"confirmed by the charges search ({shown})"
