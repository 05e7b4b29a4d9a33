"""Our copy of the gateway's users (uid + key) and their registered cards (num)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'deleted')", name="status"),
        # The ops console's list: newest first, keyset pages on (created_at, uid).
        Index("ix_customers_created", "created_at", "uid"),
    )

    uid: Mapped[str] = mapped_column(String(50), primary_key=True)
    # The gateway-issued id that, with uid, authorizes stored-card operations.
    key: Mapped[str] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Card(Base):
    """A registered card: only what the gateway returns (masked number, expiry, holder)."""

    __tablename__ = "cards"
    __table_args__ = (
        UniqueConstraint("customer_uid", "num"),
        CheckConstraint("status IN ('active', 'deleted')", name="status"),
        # The kickback loop's look for cards left unread (every 5 s): only those rows.
        Index(
            "ix_cards_unread",
            "updated_at",
            postgresql_where=text("masked_number IS NULL AND status = 'active'"),
            sqlite_where=text("masked_number IS NULL AND status = 'active'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_uid: Mapped[str] = mapped_column(ForeignKey("customers.uid"), index=True)
    num: Mapped[int] = mapped_column(Integer)
    masked_number: Mapped[str | None] = mapped_column(String(32))
    expiry: Mapped[str | None] = mapped_column(String(4))  # YYMM as the gateway returns it
    first_name: Mapped[str | None] = mapped_column(String(50))
    last_name: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CustomerEvent(Base):
    """Append-only audit of every change to our copy of customers and cards, and who made it
    (the gateway calls themselves are in gateway_calls, ref = the uid)."""

    __tablename__ = "customer_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # No foreign key: the trail must outlive whatever happens to the row it describes.
    customer_uid: Mapped[str] = mapped_column(String(50), index=True)
    card_num: Mapped[int | None] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
