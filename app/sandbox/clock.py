"""The simulator's clock: real time plus an offset the control API can advance, so token expiry,
the re-auth month window, the 90-day capture limit and kickback re-sends are testable without
sleeping."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


class SimClock:
    def __init__(self) -> None:
        self.offset = 0.0
        # Set when the clock jumps, so waiters look at it again (made on first wait: an Event
        # belongs to the loop that first waits on it).
        self._moved: asyncio.Event | None = None

    def now(self) -> datetime:
        return datetime.now(JST) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds
        self._wake()

    def reset(self) -> None:
        self.offset = 0.0
        self._wake()

    def _wake(self) -> None:
        moved, self._moved = self._moved, None
        if moved is not None:
            moved.set()

    async def wait_until(self, when: datetime) -> None:
        """Returns once the clock shows `when`: as real time passes, or at once when the
        control API advances the clock past it."""
        while (left := (when - self.now()).total_seconds()) > 0:
            if self._moved is None:
                self._moved = asyncio.Event()
            try:
                async with asyncio.timeout(left):
                    await self._moved.wait()
            except TimeoutError:
                pass


def jst_text(value: datetime | None) -> str | None:
    """The search API's `yyyy-MM-ddTHH:mm:ss` (JST, no zone suffix)."""
    return value.astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S") if value else None
