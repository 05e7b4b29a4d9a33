"""The payment gauges of /metrics (`rp_db_payments*`, `rp_db_janitor_lag_seconds`), read at
scrape time by app.metrics.DbGauges."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.metrics import (
    DB_JANITOR_LAG,
    DB_NEEDS_ATTENTION,
    DB_PAYMENTS,
    DB_STALE_PENDING,
    DB_UNKNOWN,
)
from app.payments.models import PAYMENT_STATUSES, Payment

STALE_PENDING_AFTER = timedelta(minutes=10)


async def read(session: AsyncSession, now: datetime) -> None:
    """Sets the payment gauges from `session` (reads only)."""
    counts = dict(
        (await session.execute(select(Payment.status, func.count()).group_by(Payment.status))).all()
    )
    stale = await session.scalar(
        select(func.count()).where(
            Payment.status == "pending", Payment.created_at < now - STALE_PENDING_AFTER
        )
    )
    attention = await session.scalar(select(func.count()).where(Payment.needs_attention.is_(True)))
    oldest_due = await session.scalar(
        select(func.min(Payment.next_check_at)).where(
            Payment.status.in_(("pending", "unknown")),
            Payment.needs_attention.is_(False),
            Payment.next_check_at <= now,
        )
    )
    for status in PAYMENT_STATUSES:
        DB_PAYMENTS.labels(status).set(counts.get(status, 0))
    DB_UNKNOWN.set(counts.get("unknown", 0))
    DB_STALE_PENDING.set(stale or 0)
    DB_NEEDS_ATTENTION.set(attention or 0)
    DB_JANITOR_LAG.set((now - oldest_due).total_seconds() if oldest_due else 0)
