"""The outbox: one row per change the shop is told of, written in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
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
