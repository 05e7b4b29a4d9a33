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
