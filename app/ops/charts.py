"""The console home's charts, read from our own tables over a window (24 h, 7 d or 30 d):
payments per hour or day by outcome, the approval rate, gateway latency p50/p99, declines
by code and the failed pays the card-testing limits counted. Each query is bounded by the
window (an index range on created_at/started_at), so its cost follows the window's traffic,
not the size of the tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.gateway.audit import GatewayCallLog
from app.payments.models import PAYMENT_STATUSES, Payment
from app.velocity import PayFailure
from app.web.pages import JST

# window -> (its length, one bar's length)
WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(days=1)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
# A payment's outcome on the chart (its status now).
OUTCOMES = ("succeeded", "failed", "open")
_OUTCOME_OF = {
    "authorized": "succeeded",
    "captured": "succeeded",
    "canceled": "succeeded",  # it was approved; canceled later by the shop
    "failed": "failed",
    "pending": "open",
    "unknown": "open",
}
# Latency percentiles are taken over at most this many of the window's newest calls.
_LATENCY_SAMPLE = 5000


@dataclass(frozen=True)
class Bar:
    start: datetime  # JST
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Charts:
    window: str
    bars: list[Bar]
    approval_rate: float | None  # succeeded / (succeeded + failed); None without either
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    declines: list[tuple[str, int]]  # (error code, count), most first
    by_status: dict[str, int]  # the window's payments by their status now
    velocity_failures: int

    @property
    def peak(self) -> int:
        return max((b.total for b in self.bars), default=0)


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def _bucket_start(now: datetime, length: timedelta, step: timedelta) -> datetime:
    """The first bar's start, in JST, on a whole hour or day."""
    since = (now - length).astimezone(JST)
    if step >= timedelta(days=1):
        since = since.replace(hour=0, minute=0, second=0, microsecond=0) + step
    else:
        since = since.replace(minute=0, second=0, microsecond=0) + step
    return since


async def read(sessions: async_sessionmaker[AsyncSession], window: str) -> Charts:
    length, step = WINDOWS[window]
    now = utcnow()
    first = _bucket_start(now, length, step)
    count = int((now.astimezone(JST) - first) / step) + 1
    bars = [Bar(first + i * step, dict.fromkeys(OUTCOMES, 0)) for i in range(count)]
    async with sessions() as session:
        # The window's (created_at, status) pairs, bucketed here: portable (SQLite too), and
        # the window bounds the rows read (an index range on created_at).
        rows = (
            await session.execute(
                select(Payment.created_at, Payment.status).where(Payment.created_at >= first)
            )
        ).all()
        by_status = dict.fromkeys(PAYMENT_STATUSES, 0)
        for created, status in rows:
            at = int((created.astimezone(JST) - first) / step)
            if 0 <= at < len(bars):
                bars[at].counts[_OUTCOME_OF.get(status, "open")] += 1
                by_status[status] = by_status.get(status, 0) + 1
        declines = (
            await session.execute(
                select(Payment.error_code, func.count())
                .where(
                    Payment.created_at >= first,
                    Payment.status == "failed",
                    Payment.error_code.is_not(None),
                )
                .group_by(Payment.error_code)
                .order_by(func.count().desc())
                .limit(10)
            )
        ).all()
        latencies = sorted(
            (
                await session.execute(
                    select(GatewayCallLog.latency_ms)
                    .where(GatewayCallLog.started_at >= first)
                    .order_by(GatewayCallLog.started_at.desc())
                    .limit(_LATENCY_SAMPLE)
                )
            ).scalars()
        )
        failures = await session.scalar(
            select(func.count()).select_from(PayFailure).where(PayFailure.created_at >= first)
        )
    succeeded = sum(b.counts["succeeded"] for b in bars)
    failed = sum(b.counts["failed"] for b in bars)
    return Charts(
        window=window,
        bars=bars,
        approval_rate=succeeded / (succeeded + failed) if succeeded + failed else None,
        latency_p50_ms=_percentile(latencies, 0.5),
        latency_p99_ms=_percentile(latencies, 0.99),
        declines=[(str(code), int(n)) for code, n in declines],
        by_status=by_status,
        velocity_failures=failures or 0,
    )
