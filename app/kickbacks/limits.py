"""What unauthenticated senders may cost us: kickbacks stored per source and in all, and
charges-search calls spent on verifying kickbacks.

Both live in process memory, bounded. The intake budget is checked before anything touches
the database (a flood costs no query and no disk), and it is what bounds storage, so a per-
process figure is enough: N replicas accept at most N times the budget. The search budget
protects the gateway quota the janitor needs; per process too, for the same reason.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

from app.gateway.base import ChargeRecord, PaymentGateway
from app.metrics import KICKBACK_SEARCHES
from app.ratelimit import Clock, IntakeBudget, TokenBucket

__all__ = ["IntakeBudget", "OverBudget", "TokenBucket", "Verifier"]


class OverBudget(Exception):
    """No verification search may be made now; ask again later."""


@dataclass
class Verifier:
    """Charges-search look-ups for kickback verification: cached per gid for `ttl` seconds
    (at most `cache_size` gids) and, for untrusted kickbacks, at most `per_minute` calls."""

    per_minute: int = 0
    cache_size: int = 1024
    ttl: float = 30.0
    clock: Clock = time.monotonic
    _cache: OrderedDict[int, tuple[float, list[ChargeRecord]]] = field(default_factory=OrderedDict)
    _budget: TokenBucket | None = None

    async def rows(self, gateway: PaymentGateway, gid: int, *, trusted: bool) -> list[ChargeRecord]:
        """The search's rows for `gid`. Raises OverBudget (untrusted, budget spent) or the
        gateway's SearchError."""
        now = self.clock()
        hit = self._cache.get(gid)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(gid)
            KICKBACK_SEARCHES.labels("cached").inc()
            return hit[1]
        if self._budget is None:
            self._budget = TokenBucket(self.per_minute, self.clock)
        # The gateway's own kickbacks (trusted) are not made to wait for forged ones.
        if not trusted and not self._budget.take():
            KICKBACK_SEARCHES.labels("over_budget").inc()
            raise OverBudget
        KICKBACK_SEARCHES.labels("called").inc()
        rows = await gateway.search_charges(charge_id=gid)
        self._cache[gid] = (self.clock() + self.ttl, rows)
        self._cache.move_to_end(gid)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return rows
