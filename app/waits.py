"""Waiting on events in loops that are stopped by cancel.

Python 3.11's `asyncio.wait_for` can swallow a cancel that lands as the awaited event is set
(fixed in 3.12): a loop stopped by `task.cancel()` then runs on, and whoever awaits it (the
app's shutdown, a reconciliation pass) waits forever. `asyncio.wait` has no such race."""

from __future__ import annotations

import asyncio


async def any_of(*events: asyncio.Event, seconds: float) -> None:
    """Returns when one of `events` is set or after `seconds`, whichever comes first."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
