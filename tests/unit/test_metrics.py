"""app.metrics.DbGauges: the domains' gauge readers share one session per scrape, at most once
per ttl, and a failing database counts a scrape error instead of breaking /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.metrics import DbGauges


def _sessions(opened: list[object], *, fail: bool = False) -> async_sessionmaker[AsyncSession]:
    @asynccontextmanager
    async def session() -> AsyncIterator[object]:
        if fail:
            raise ConnectionRefusedError("database down")
        s = object()
        opened.append(s)
        yield s

    return cast(async_sessionmaker[AsyncSession], session)


async def test_readers_share_one_session_per_scrape_and_are_cached() -> None:
    seen: list[tuple[str, Any, datetime]] = []

    async def payments(session: AsyncSession, now: datetime) -> None:
        seen.append(("payments", session, now))

    async def kickbacks(session: AsyncSession, now: datetime) -> None:
        seen.append(("kickbacks", session, now))

    opened: list[object] = []
    gauges = DbGauges(readers=(payments, kickbacks), ttl=60)
    await gauges.refresh(_sessions(opened))
    await gauges.refresh(_sessions(opened))  # within the ttl: no second read
    assert [name for name, _, _ in seen] == ["payments", "kickbacks"]
    assert len(opened) == 1 and all(s is opened[0] for _, s, _ in seen)
    assert seen[0][2] == seen[1][2]


async def test_a_database_down_counts_a_scrape_error() -> None:
    before = _errors()
    read: list[AsyncSession] = []

    async def reader(session: AsyncSession, now: datetime) -> None:
        read.append(session)

    await DbGauges(readers=(reader,)).refresh(_sessions([], fail=True))
    assert _errors() == before + 1 and read == []


def _errors() -> float:
    return REGISTRY.get_sample_value("rp_db_metrics_errors_total") or 0.0
