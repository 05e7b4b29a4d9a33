"""Per-process budgets for what unauthenticated senders may cost us (untrusted kickbacks:
app/kickbacks/limits.py; CSP reports: app/pagesec/router.py): a token bucket, and one per
source address plus one for all of them. In memory, bounded, no I/O: a flood is refused
before it costs a query."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

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
    """Requests taken per minute from unauthenticated senders (untrusted kickbacks, CSP
    reports): per source address and in all. At most
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
