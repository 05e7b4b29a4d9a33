"""The simulator's clock: real time plus an offset the control API can advance, so token expiry,
the re-auth month window and the 90-day capture limit are testable without sleeping."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

JST = timezone(timedelta(hours=9), "JST")


class SimClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> datetime:
        return datetime.now(JST) + timedelta(seconds=self.offset)

    def advance(self, seconds: float) -> None:
        self.offset += seconds

    def reset(self) -> None:
        self.offset = 0.0


def jst_text(value: datetime | None) -> str | None:
    """The search API's `yyyy-MM-ddTHH:mm:ss` (JST, no zone suffix)."""
    return value.astimezone(JST).strftime("%Y-%m-%dT%H:%M:%S") if value else None
