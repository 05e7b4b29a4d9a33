"""The kickback gauges of /metrics (`rp_db_kickbacks_unprocessed`, `rp_db_kickback_lag_seconds`),
read at scrape time by app.metrics.DbGauges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kickbacks.models import Kickback
from app.metrics import DB_KICKBACK_BACKLOG, DB_KICKBACK_LAG


async def read(session: AsyncSession, now: datetime) -> None:
    """Sets the kickback gauges from `session` (reads only)."""
    backlog, oldest = (
        await session.execute(
            select(func.count(), func.min(Kickback.received_at)).where(
                Kickback.status.in_(("received", "error"))
            )
        )
    ).one()
    DB_KICKBACK_BACKLOG.set(backlog or 0)
    DB_KICKBACK_LAG.set((now - oldest).total_seconds() if oldest else 0)
