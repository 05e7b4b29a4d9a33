"""What an operation gets (the state, the request, where the shopper's browser reaches us) and
what it gives back (the answer's elements between res_result and res_err_code, and whether the
magic card makes the answer slow or hang)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.sandbox.sbps.fields import Request
from app.sandbox.sbps.state import SbpsState
from app.sandbox.sbps.wire import Item

# Every request carries these (the hash and the date are checked before the operation runs).
COMMON = ("merchant_id", "service_id", "request_date", "sps_hashcode")


@dataclass
class Call:
    sim: SbpsState
    req: Request
    base_url: str  # the simulator's root as the caller reached it, ending in "/"


@dataclass
class Answer:
    items: Sequence[Item]
    slow: bool = False
    hang: bool = False


Handler = Callable[[Call], Answer]


@dataclass(frozen=True)
class Operation:
    handler: Handler
    required: tuple[str, ...]
    # Moves money: faults roll here (timeout/garbage after the change is recorded, 500 before).
    money: bool
