"""The watcher's gauges of /metrics, read at scrape time by app.metrics.DbGauges: how many
scripts are not approved now, and how long ago a pass last finished (a stalled watcher is
an 11.6.1 gap too)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.metrics import DB_SCRIPT_WATCH_AGE, DB_SCRIPTS_UNAPPROVED
from app.pagesec.models import ScriptState, WatchLease
from app.pagesec.watcher import BLOCKING, LEASE_NAME


async def read(session: AsyncSession, now: datetime) -> None:
    blocked = await session.scalar(
        select(func.count()).select_from(ScriptState).where(ScriptState.status.in_(BLOCKING))
    )
    last = await session.scalar(select(WatchLease.last_run_at).where(WatchLease.name == LEASE_NAME))
    DB_SCRIPTS_UNAPPROVED.set(blocked or 0)
    DB_SCRIPT_WATCH_AGE.set((now - last).total_seconds() if last else 0.0)
