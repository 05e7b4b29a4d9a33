"""app.waits.any_of: a loop waiting on it stops when cancelled, even when the event is set in
the same instant (the race Python 3.11's wait_for loses, which hung reconciliation passes: with
wait_for in `_loop`, all three cases below hang on 3.11.7)."""

from __future__ import annotations

import asyncio

import pytest

from app import waits


async def _loop(event: asyncio.Event, rounds: list[int]) -> None:
    while True:
        await waits.any_of(event, seconds=10)
        event.clear()
        rounds.append(1)


@pytest.mark.parametrize("ticks", [0, 1, 2])
async def test_a_cancel_landing_with_the_event_stops_the_loop(ticks: int) -> None:
    event = asyncio.Event()
    rounds: list[int] = []
    task = asyncio.create_task(_loop(event, rounds))
    for _ in range(3):
        await asyncio.sleep(0)
    event.set()
    for _ in range(ticks):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert task.cancelled()


async def test_returns_on_the_first_event_or_the_time() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    start = loop.time()
    await waits.any_of(a, b, seconds=0.05)
    assert loop.time() - start >= 0.04
    b.set()
    start = loop.time()
    await waits.any_of(a, b, seconds=10)
    assert loop.time() - start < 5
