"""The webhook gauges of /metrics, read at scrape time by app.metrics.DbGauges."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.models import EventDelivery, WebhookEndpoint
from app.metrics import DB_EVENT_BACKLOG, DB_EVENT_LAG, DB_WEBHOOKS_FAILING


async def read(session: AsyncSession, now: datetime) -> None:
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
    DB_EVENT_BACKLOG.set(pending or 0)
    DB_EVENT_LAG.set((now - oldest).total_seconds() if oldest else 0)
    DB_WEBHOOKS_FAILING.set(failing or 0)
