"""The outbox: one row per change the shop is told of, written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        # Per object (a payment's events in the order they happened) and the list's filters.
        Index("ix_events_object_seq", "object_type", "object_id", "seq"),
        Index("ix_events_type_seq", "type", "seq"),
    )

    # Ordering and the list's cursor: assigned by the database at insert, so it follows the
    # commit order of one object's changes (they are made under its row lock).
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(40), unique=True)
    type: Mapped[str] = mapped_column(String(48))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(80))
    # The object as the API shows it, rendered when the transaction commits: the committed
    # state, never card data or tokens.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    """Where the shop wants its events: a URL, the types it wants (none = all), its secret."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(String(200))
    # Empty = every type.
    event_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The signing secret, encrypted with WEBHOOK_SECRET_KEY (app/events/secrets.py): the
    # secret must be kept to sign, so it cannot be a one-way digest.
    secret: Mapped[str] = mapped_column(String(400))
    # A rolled secret still signs (as a second v1) until this time, so the shop can switch.
    previous_secret: Mapped[str | None] = mapped_column(String(400))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column()
    # Set when a delivery was given up on (retried for WEBHOOK_RETRY_HOURS); cleared by the
    # next delivery that succeeds.
    failing_since: Mapped[datetime | None] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EventDelivery(Base):
    """One event to one endpoint: made in the event's transaction, sent by a dispatcher."""

    __tablename__ = "event_deliveries"
    __table_args__ = (
        # The dispatcher's scan: what is due.
        Index(
            "ix_event_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # Per (endpoint, object) order: an older pending delivery holds back the later ones.
        Index(
            "ix_event_deliveries_order",
            "endpoint_id",
            "object_key",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index("ix_event_deliveries_event", "event_id"),
    )

    # Insert order = the events' order (both are written in one flush, in emit order).
    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    event_id: Mapped[str] = mapped_column(String(40))
    endpoint_id: Mapped[str] = mapped_column(String(40))
    object_key: Mapped[str] = mapped_column(String(120))
    # pending -> delivered | failed (given up) | canceled (endpoint deleted)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Due time; while an attempt is in flight, the end of its lease (a dispatcher that dies
    # mid-send leaves the row due again when the lease ends).
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryAttempt(Base):
    """One POST of an event to an endpoint, as it went."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_delivery", "delivery_seq"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    delivery_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    http_status: Mapped[int | None] = mapped_column(Integer)
    # What went wrong without an HTTP answer (timeout, refused, address not allowed).
    error: Mapped[str | None] = mapped_column(String(200))
    latency_ms: Mapped[int] = mapped_column(Integer)
    # The first bytes of the answer (as text), for the shop's own debugging.
    response_excerpt: Mapped[str | None] = mapped_column(String(500))
