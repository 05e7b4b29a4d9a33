"""Webhook endpoints (the merchant's) and the record of events: what the API and the CLI run.
Each function takes the session factory and owns its transaction."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.errors import FieldError, NotFound, Unprocessable
from app.events import addresses
from app.events.models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint
from app.events.outbox import object_key
from app.events.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointUpdate,
    EventDetailOut,
    EventOut,
)
from app.events.secrets import SecretBox, new_secret

# Endpoints a shop may have (Stripe allows 16): each event is one delivery per endpoint.
MAX_ENDPOINTS = 16


@dataclass(frozen=True)
class UrlRules:
    live: bool
    allow_loopback: bool


async def check_url(url: str, rules: UrlRules) -> None:
    """A 422 naming `url` when events may not go there (the same rules a delivery checks)."""
    problem = addresses.url_problem(url, live=rules.live)
    if problem is None:
        try:
            await asyncio.wait_for(
                addresses.resolve(url, allow_loopback=rules.allow_loopback), timeout=5.0
            )
        except addresses.AddressRefused as exc:
            problem = str(exc)
        except TimeoutError:
            problem = "could not be resolved in time"
    if problem is not None:
        raise Unprocessable(
            f"The endpoint URL {problem}.",
            errors=[FieldError(field="url", message=problem)],
        )


async def _live_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    row = await session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"No webhook endpoint {endpoint_id}.")
    return row


async def create_endpoint(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    data: EndpointCreate,
    rules: UrlRules,
) -> tuple[WebhookEndpoint, str]:
    """The new endpoint and its secret (the only time the secret is returned)."""
    await check_url(data.url, rules)
    secret = new_secret()
    async with sessions() as session:
        count = len(
            (
                await session.execute(
                    select(WebhookEndpoint.id).where(WebhookEndpoint.deleted_at.is_(None))
                )
            ).all()
        )
        if count >= MAX_ENDPOINTS:
            raise Unprocessable(
                f"A shop may have at most {MAX_ENDPOINTS} webhook endpoints; delete one first."
            )
        row = WebhookEndpoint(
            id=new_id("we"),
            url=data.url,
            event_types=list(data.event_types),
            description=data.description,
            enabled=data.enabled,
            secret=box.seal(secret),
        )
        session.add(row)
        await session.commit()
    return row, secret


async def list_endpoints(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookEndpoint]:
    async with sessions() as session:
        stmt = (
            select(WebhookEndpoint)
            .where(WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.created_at)
        )
        return list((await session.execute(stmt)).scalars())


async def get_endpoint(
    sessions: async_sessionmaker[AsyncSession], endpoint_id: str
) -> WebhookEndpoint:
    async with sessions() as session:
        row = await session.get(WebhookEndpoint, endpoint_id)
        if row is None or row.deleted_at is not None:
            raise NotFound(f"No webhook endpoint {endpoint_id}.")
        return row


async def update_endpoint(
    sessions: async_sessionmaker[AsyncSession],
    endpoint_id: str,
    data: EndpointUpdate,
    rules: UrlRules,
) -> WebhookEndpoint:
    if data.url is not None:
        await check_url(data.url, rules)
    async with sessions() as session:
        row = await _live_endpoint(session, endpoint_id)
        if data.url is not None:
            row.url = data.url
        if data.event_types is not None:
            row.event_types = list(data.event_types)
        if "description" in data.model_fields_set:
            row.description = data.description
        if data.enabled is not None:
            row.enabled = data.enabled
        row.updated_at = utcnow()
        await session.commit()
        return row


async def delete_endpoint(sessions: async_sessionmaker[AsyncSession], endpoint_id: str) -> None:
    """Gone from the API at once; what it was still owed is canceled (the record stays)."""
    async with sessions() as session:
        row = await _live_endpoint(session, endpoint_id)
        row.deleted_at = utcnow()
        row.enabled = False
        await session.execute(
            update(EventDelivery)
            .where(EventDelivery.endpoint_id == endpoint_id, EventDelivery.status == "pending")
            .values(status="canceled")
        )
        await session.commit()


async def roll_secret(
    sessions: async_sessionmaker[AsyncSession],
    box: SecretBox,
    endpoint_id: str,
    overlap: timedelta,
) -> tuple[WebhookEndpoint, str]:
    """A new secret; the old one still signs (a second v1) for `overlap`."""
    secret = new_secret()
    async with sessions() as session:
        row = await _live_endpoint(session, endpoint_id)
        now = utcnow()
        if overlap > timedelta(0):
            row.previous_secret = row.secret
            row.previous_secret_expires_at = now + overlap
        else:
            row.previous_secret = None
            row.previous_secret_expires_at = None
        row.secret = box.seal(secret)
        row.updated_at = now
        await session.commit()
        return row, secret


async def rewrap_secrets(sessions: async_sessionmaker[AsyncSession], box: SecretBox) -> int:
    """Re-encrypts every secret with WEBHOOK_SECRET_KEY's first key (after a key rotation)."""
    async with sessions() as session:
        rows = list((await session.execute(select(WebhookEndpoint))).scalars())
        for row in rows:
            row.secret = box.rewrap(row.secret)
            if row.previous_secret:
                row.previous_secret = box.rewrap(row.previous_secret)
        await session.commit()
        return len(rows)


# --- the record -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    type: str | None = None
    object_id: str | None = None
    # The `seq` of the last event of the previous page (events come newest first).
    before: int | None = None
    limit: int = 20


def encode_cursor(seq: int) -> str:
    return f"e{seq}"


def decode_cursor(cursor: str) -> int:
    """Raises ValueError on anything that is not a cursor we made."""
    if not cursor.startswith("e") or not cursor[1:].isdigit():
        raise ValueError("bad cursor")
    return int(cursor[1:])


async def list_events(
    sessions: async_sessionmaker[AsyncSession], f: EventFilter
) -> tuple[list[Event], str | None]:
    stmt = select(Event).order_by(Event.seq.desc()).limit(f.limit + 1)
    if f.type is not None:
        stmt = stmt.where(Event.type == f.type)
    if f.object_id is not None:
        stmt = stmt.where(Event.object_id == f.object_id)
    if f.before is not None:
        stmt = stmt.where(Event.seq < f.before)
    async with sessions() as session:
        rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > f.limit
    rows = rows[: f.limit]
    return rows, encode_cursor(rows[-1].seq) if more and rows else None


async def event_detail(sessions: async_sessionmaker[AsyncSession], event_id: str) -> EventDetailOut:
    async with sessions() as session:
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar()
        if event is None:
            raise NotFound(f"No event {event_id}.")
        deliveries = list(
            (
                await session.execute(
                    select(EventDelivery)
                    .where(EventDelivery.event_id == event_id)
                    .order_by(EventDelivery.seq)
                )
            ).scalars()
        )
        attempts = list(
            (
                await session.execute(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_seq.in_([d.seq for d in deliveries]))
                    .order_by(DeliveryAttempt.id)
                )
            ).scalars()
        )
    shown = EventOut.of(event)
    return EventDetailOut(
        **shown.model_dump(),
        deliveries=[
            DeliveryOut.of(d, [a for a in attempts if a.delivery_seq == d.seq]) for d in deliveries
        ],
    )


async def redeliver(
    sessions: async_sessionmaker[AsyncSession], event_id: str, endpoint_id: str | None = None
) -> int:
    """Queues the event again, now, to each endpoint it went to (or to `endpoint_id`, which
    need not have had it). Returns the number of deliveries queued."""
    async with sessions() as session:
        event = (await session.execute(select(Event).where(Event.id == event_id))).scalar()
        if event is None:
            raise NotFound(f"No event {event_id}.")
        stmt = select(EventDelivery).where(EventDelivery.event_id == event_id)
        if endpoint_id is not None:
            await _live_endpoint(session, endpoint_id)
            stmt = stmt.where(EventDelivery.endpoint_id == endpoint_id)
        deliveries = list((await session.execute(stmt.with_for_update())).scalars())
        live = set(
            (
                await session.execute(
                    select(WebhookEndpoint.id).where(WebhookEndpoint.deleted_at.is_(None))
                )
            ).scalars()
        )
        now = utcnow()
        queued = 0
        for d in deliveries:
            if d.endpoint_id not in live:
                continue
            # A pending one (retrying, or in flight) is simply made due now.
            d.status = "pending"
            d.next_attempt_at = now
            queued += 1
        if endpoint_id is not None and not deliveries:
            session.add(
                EventDelivery(
                    event_id=event.id,
                    endpoint_id=endpoint_id,
                    object_key=object_key(event.object_type, event.object_id),
                )
            )
            queued += 1
        await session.commit()
        return queued
