"""Billing robo card registrations (one row per attempt) and the card pages that make them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

REGISTRATION_STATUSES = ("processing", "succeeded", "failed", "unknown")


class BillingCardSession(Base):
    """What a 'billing_card' checkout session registers a card on: the payer and exactly one
    of its payment method's number or code. The page's e-mail/phone (for 3-D Secure and the
    request) are the session's own `email`/`phone`."""

    __tablename__ = "billing_card_sessions"
    __table_args__ = (
        CheckConstraint(
            "(payment_method_number IS NULL) <> (payment_method_code IS NULL)",
            name="one_payment_method",
        ),
    )

    session_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("checkout_sessions.id"), primary_key=True
    )
    billing_code: Mapped[str] = mapped_column(String(20), index=True)
    payment_method_number: Mapped[int | None] = mapped_column(BigInteger)
    payment_method_code: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BillingCardRegistration(Base):
    """One credit_card_token call (with its 429 retries): persisted as 'processing' before the
    call, then 'succeeded', 'failed' (with the error code) or 'unknown' (no readable answer:
    billing robo may have registered the card)."""

    __tablename__ = "billing_card_registrations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('processing', 'succeeded', 'failed', 'unknown')", name="status"
        ),
        # The ops console's list: newest first, keyset pages on (created_at, id).
        Index("ix_billing_card_registrations_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # The card page it came from; None for the merchant API.
    session_id: Mapped[str | None] = mapped_column(
        String(40), ForeignKey("checkout_sessions.id"), index=True
    )
    billing_code: Mapped[str] = mapped_column(String(20), index=True)
    payment_method_number: Mapped[int | None] = mapped_column(BigInteger)
    payment_method_code: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(100))
    tel: Mapped[str | None] = mapped_column(String(15))
    status: Mapped[str] = mapped_column(String(16), default="processing")
    error_code: Mapped[str | None] = mapped_column(String(32))
    # HTTP exchanges made (more than one only after 429 answers).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
