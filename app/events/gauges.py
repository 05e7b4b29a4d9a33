"""The webhook gauges of /metrics, read at scrape time by app.metrics.DbGauges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import EventDelivery, WebhookEndpoint
from app.metrics import DB_EVENT_BACKLOG, DB_EVENT_LAG, DB_WEBHOOKS_FAILING


@dataclass(frozen=True)
class EventFigures:
    backlog: int
    lag_seconds: float
    failing_endpoints: int


async def figures(session: AsyncSession, now: datetime) -> EventFigures:
    pending, oldest = (
        await session.execute(
            select(func.count(), func.min(EventDelivery.created_at))
            .join(WebhookEndpoint, WebhookEndpoint.id == EventDelivery.endpoint_id)
            .where(EventDelivery.status == "pending", WebhookEndpoint.enabled.is_(True))
        )
    ).one()
    failing = await session.scalar(
        select(func.count()).where(
            WebhookEndpoint.failing_since.is_not(None), WebhookEndpoint.deleted_at.is_(None)
        )
    )
    return EventFigures(
        backlog=pending or 0,
        lag_seconds=(now - oldest).total_seconds() if oldest else 0.0,
        failing_endpoints=failing or 0,
    )


async def read(session: AsyncSession, now: datetime) -> None:
    f = await figures(session, now)
    DB_EVENT_BACKLOG.set(f.backlog)
    DB_EVENT_LAG.set(f.lag_seconds)
    DB_WEBHOOKS_FAILING.set(f.failing_endpoints)
