"""The payment state machine: a pure transition table, no I/O.

    pending ──► authorized ──► captured
       │  │         │             │
       │  └► unknown┤             │
       │       │    └──────► canceled ◄┘
       └───────┴──► failed

`unknown` means the gateway may or may not have acted (timeout, unreadable answer); only
evidence from the gateway (a kickback, the search API, a later answer) moves it on.
Nothing ever moves backwards: a late or duplicated notification is a no-op, not an error.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    CANCELED = "canceled"
    FAILED = "failed"
    UNKNOWN = "unknown"


ALLOWED: dict[Status, frozenset[Status]] = {
    Status.PENDING: frozenset(
        {Status.AUTHORIZED, Status.CAPTURED, Status.FAILED, Status.UNKNOWN, Status.CANCELED}
    ),
    Status.UNKNOWN: frozenset({Status.AUTHORIZED, Status.CAPTURED, Status.FAILED, Status.CANCELED}),
    Status.AUTHORIZED: frozenset({Status.CAPTURED, Status.CANCELED}),
    Status.CAPTURED: frozenset({Status.CANCELED}),
    Status.CANCELED: frozenset(),
    Status.FAILED: frozenset(),
}

TERMINAL = frozenset({Status.CANCELED, Status.FAILED})
# A payment in one of these may have moved money (or may still).
LIVE = frozenset({Status.PENDING, Status.UNKNOWN, Status.AUTHORIZED, Status.CAPTURED})


class InvalidTransition(Exception):
    def __init__(self, current: Status, target: Status) -> None:
        super().__init__(f"a {current} payment cannot become {target}")
        self.current = current
        self.target = target


def can_transition(current: Status | str, target: Status | str) -> bool:
    return Status(target) in ALLOWED[Status(current)]


def check_transition(current: Status | str, target: Status | str) -> Status:
    """The target status, or InvalidTransition (an API turns it into 409 with the status)."""
    cur, tgt = Status(current), Status(target)
    if tgt not in ALLOWED[cur]:
        raise InvalidTransition(cur, tgt)
    return tgt


def is_forward(current: Status | str, target: Status | str) -> bool:
    """True when applying `target` is progress; False for a stale/duplicate/backward update,
    which evidence-driven callers (kickbacks, reconciliation) simply ignore."""
    return can_transition(current, target)


# --- what ops may ask for (seed 002) -------------------------------------------------------
#
# The table above says which *evidence* may move a payment; these rules say which *requests*
# ops may send. Both hold: an operation's result still moves the payment through `ALLOWED`.


class Operation(StrEnum):
    CAPTURE = "capture"  # jb=SALES on an AUTH
    CANCEL = "cancel"  # jb=CANCEL on an AUTH or a captured payment
    REAUTHORIZE = "reauthorize"  # re_auth.aspx: cancel the gid, authorize new amounts


# The status each operation needs, and the status it leaves the payment in.
OPERATION_FROM: dict[Operation, frozenset[Status]] = {
    Operation.CAPTURE: frozenset({Status.AUTHORIZED}),
    Operation.CANCEL: frozenset({Status.AUTHORIZED, Status.CAPTURED}),
    Operation.REAUTHORIZE: frozenset({Status.AUTHORIZED, Status.CAPTURED}),
}
OPERATION_TO: dict[Operation, Status] = {
    Operation.CAPTURE: Status.CAPTURED,
    Operation.CANCEL: Status.CANCELED,
    Operation.REAUTHORIZE: Status.CANCELED,  # the old payment; a new one carries the money
}


class OperationNotAllowed(InvalidTransition):
    """A request ops may not make on a payment in its current status (an API answers 409)."""

    def __init__(self, operation: Operation, current: Status) -> None:
        super().__init__(current, OPERATION_TO[operation])
        needs = " or ".join(sorted(OPERATION_FROM[operation]))
        self.operation = operation
        self.message = f"Cannot {operation} a {current} payment; it must be {needs}."
        self.args = (self.message,)


def check_operation(operation: Operation, current: Status | str) -> Status:
    """The status the operation leads to, or OperationNotAllowed."""
    cur = Status(current)
    if cur not in OPERATION_FROM[operation]:
        raise OperationNotAllowed(operation, cur)
    return check_transition(cur, OPERATION_TO[operation])


# Statuses a person may settle by hand (with a reason): the ones only evidence can move.
RESOLVABLE = frozenset({Status.PENDING, Status.UNKNOWN})
RESOLVE_TARGETS = frozenset({Status.AUTHORIZED, Status.CAPTURED, Status.CANCELED, Status.FAILED})


def check_resolution(current: Status | str, target: Status | str, *, flagged: bool) -> Status:
    """A manual resolution: from pending/unknown (or any flagged payment) forward only. A
    flagged payment may also be confirmed in its current status (which clears the flag)."""
    cur, tgt = Status(current), Status(target)
    if tgt not in RESOLVE_TARGETS or (cur not in RESOLVABLE and not flagged):
        raise InvalidTransition(cur, tgt)
    if flagged and cur == tgt:
        return tgt
    return check_transition(cur, tgt)


# --- re-authorization policy (seed 002 p.5) ------------------------------------------------

JST = timezone(timedelta(hours=9), "JST")


class ReauthRefusal(StrEnum):
    PRODUCT_REGISTERED = "reauth_product_registered"
    TOO_OLD = "reauth_too_old"
    NOT_A_CHARGE = "reauth_not_a_charge"


REAUTH_MESSAGES: dict[ReauthRefusal, str] = {
    ReauthRefusal.PRODUCT_REGISTERED: (
        "A product-registered payment (item_code) cannot be re-authorized (seed 002)."
    ),
    ReauthRefusal.TOO_OLD: (
        "Only payments made this month or last month (Japan time) can be re-authorized."
    ),
    ReauthRefusal.NOT_A_CHARGE: "A card check (job CHECK) has no amount to re-authorize.",
}


def months_apart_jst(earlier: datetime, later: datetime) -> int:
    """Calendar months between two instants, counted on the gateway's (Japanese) calendar."""
    a, b = earlier.astimezone(JST), later.astimezone(JST)
    return (b.year * 12 + b.month) - (a.year * 12 + a.month)


def reauth_refusal(
    *, item_code: str | None, job: str, created_at: datetime, now: datetime
) -> ReauthRefusal | None:
    """Why the gateway would refuse to re-authorize this payment, or None if it may."""
    if item_code:
        return ReauthRefusal.PRODUCT_REGISTERED
    if job == "CHECK":
        return ReauthRefusal.NOT_A_CHARGE
    if months_apart_jst(created_at, now) > 1:
        return ReauthRefusal.TOO_OLD
    return None
