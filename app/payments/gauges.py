"""The payment gauges of /metrics (`rp_db_payments*`, `rp_db_janitor_lag_seconds`), read at
scrape time by app.metrics.DbGauges."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
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
# The statuses a payment is still open in: few rows however big the table grows.
OPEN_STATUSES = ("pending", "unknown")


@dataclass(frozen=True)
class PaymentFigures:
    """What the gauges show, also the ops console's "what needs a person" (one reading)."""

    by_status: dict[str, int]  # the statuses asked for (every one for /metrics)
    stale_pending: int
    needs_attention: int
    janitor_lag_seconds: float


async def figures(
    session: AsyncSession, now: datetime, statuses: Collection[str] = PAYMENT_STATUSES
) -> PaymentFigures:
    """Reads the payment figures from `session` (reads only). Counting every status reads the
    whole table (an index scan); the console asks for OPEN_STATUSES, an index range."""
    counts = dict(
        (
            await session.execute(
                select(Payment.status, func.count())
                .where(Payment.status.in_(statuses))
                .group_by(Payment.status)
            )
        ).all()
    )
    stale = await session.scalar(
        select(func.count()).where(
            Payment.status == "pending", Payment.created_at < now - STALE_PENDING_AFTER
        )
    )
    # The bare column (not IS TRUE): PostgreSQL then counts from the partial index on it.
    attention = await session.scalar(select(func.count()).where(Payment.needs_attention))
    oldest_due = await session.scalar(
        select(func.min(Payment.next_check_at)).where(
            Payment.status.in_(("pending", "unknown")),
            Payment.needs_attention.is_(False),
            Payment.next_check_at <= now,
        )
    )
    return PaymentFigures(
        by_status={status: int(counts.get(status, 0)) for status in statuses},
        stale_pending=stale or 0,
        needs_attention=attention or 0,
        janitor_lag_seconds=(now - oldest_due).total_seconds() if oldest_due else 0.0,
    )


async def read(session: AsyncSession, now: datetime) -> None:
    """Sets the payment gauges from `session` (reads only)."""
    f = await figures(session, now)
    for status, count in f.by_status.items():
        DB_PAYMENTS.labels(status).set(count)
    DB_UNKNOWN.set(f.by_status.get("unknown", 0))
    DB_STALE_PENDING.set(f.stale_pending)
    DB_NEEDS_ATTENTION.set(f.needs_attention)
    DB_JANITOR_LAG.set(f.janitor_lag_seconds)
