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
from collections.abc import Callable
from dataclasses import dataclass, field

from app.gateway.base import ChargeRecord, PaymentGateway
from app.metrics import KICKBACK_SEARCHES

Clock = Callable[[], float]


@dataclass
class TokenBucket:
    """`rate` tokens per minute, at most `rate` saved up; rate 0 = no limit."""

    rate: int
    clock: Clock = time.monotonic
    tokens: float = -1.0
    at: float = 0.0

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        now = self.clock()
        if self.tokens < 0:
            self.tokens, self.at = float(self.rate), now
        self.tokens = min(float(self.rate), self.tokens + (now - self.at) * self.rate / 60.0)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


@dataclass
class IntakeBudget:
    """Untrusted kickbacks stored per minute: per source address and in all. At most
    `max_sources` buckets are kept (least recently seen dropped first): a sender that cycles
    through addresses gets fresh buckets, but the total bucket still holds."""

    per_source: int
    total: int
    max_sources: int = 10_000
    clock: Clock = time.monotonic
    _sources: OrderedDict[str, TokenBucket] = field(default_factory=OrderedDict)
    _total: TokenBucket | None = None

    def allow(self, source: str | None) -> bool:
        if self._total is None:
            self._total = TokenBucket(self.total, self.clock)
        key = source or "-"
        bucket = self._sources.get(key)
        if bucket is None:
            bucket = self._sources[key] = TokenBucket(self.per_source, self.clock)
            while len(self._sources) > self.max_sources:
                self._sources.popitem(last=False)
        else:
            self._sources.move_to_end(key)
        # The source's bucket first: one noisy sender must not drain the shared one.
        return bucket.take() and self._total.take()


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
