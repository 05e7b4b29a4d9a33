"""The kickback gauges of /metrics (`rp_db_kickbacks_unprocessed`, `rp_db_kickback_lag_seconds`),
read at scrape time by app.metrics.DbGauges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kickbacks.models import Kickback
from app.metrics import DB_KICKBACK_BACKLOG, DB_KICKBACK_LAG


@dataclass(frozen=True)
class KickbackFigures:
    backlog: int
    lag_seconds: float


async def figures(session: AsyncSession, now: datetime) -> KickbackFigures:
    """Kickbacks stored but not yet applied (reads only)."""
    backlog, oldest = (
        await session.execute(
            select(func.count(), func.min(Kickback.received_at)).where(
                Kickback.status.in_(("received", "error"))
            )
        )
    ).one()
    return KickbackFigures(
        backlog=backlog or 0, lag_seconds=(now - oldest).total_seconds() if oldest else 0.0
    )


async def read(session: AsyncSession, now: datetime) -> None:
    """Sets the kickback gauges from `session` (reads only)."""
    f = await figures(session, now)
    DB_KICKBACK_BACKLOG.set(f.backlog)
    DB_KICKBACK_LAG.set(f.lag_seconds)
