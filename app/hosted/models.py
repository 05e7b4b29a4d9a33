"""A hosted page (a `checkout_sessions` row): what the merchant asked the shopper to pay, or
the card the customer or payer is to register, fixed server-side."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Kind(StrEnum):
    """What a hosted page does; each kind has its page handler (app/checkout/pages.py)."""

    PAYMENT = "payment"  # the shopper pays (app/checkout)
    CARD_REGISTRATION = "card_registration"  # a customer registers a card (app/customers)
    BILLING_CARD = "billing_card"  # a billing-robo payer registers a card (app/billing)


# 'processing': a card-registration session while its registration runs (the claim).
SESSION_STATUSES = ("open", "processing", "completed", "expired")


class CheckoutSession(Base):
    __tablename__ = "checkout_sessions"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'processing', 'completed', 'expired')", name="status"),
        CheckConstraint("amount >= 0 AND tax >= 0 AND shipping >= 0", name="amounts"),
        CheckConstraint("job IN ('AUTH', 'CAPTURE')", name="job"),
        CheckConstraint("kind IN ('payment', 'card_registration', 'billing_card')", name="kind"),
        # What a payment charges is a payment page's, and only a payment page's, to have.
        CheckConstraint(
            "(kind = 'payment') = (job IS NOT NULL AND amount IS NOT NULL AND tax IS NOT NULL "
            "AND shipping IS NOT NULL AND save_card IS NOT NULL AND offer_save_card IS NOT NULL)",
            name="payment_terms",
        ),
        # The ops console's list: newest first, keyset pages on (created_at, id).
        Index("ix_checkout_sessions_created", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    # A Kind: 'card_registration' and 'billing_card' pages only tokenize and register a card.
    kind: Mapped[str] = mapped_column(
        String(24), default=Kind.PAYMENT.value, server_default="payment"
    )
    # The payment terms (`service.PaymentTerms`): set on payment pages, NULL on card pages.
    job: Mapped[str | None] = mapped_column(String(8))
    amount: Mapped[int | None] = mapped_column(Integer)
    tax: Mapped[int | None] = mapped_column(Integer)
    shipping: Mapped[int | None] = mapped_column(Integer)
    item_code: Mapped[str | None] = mapped_column(String(50))
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_uid: Mapped[str | None] = mapped_column(String(50), index=True)
    email: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    save_card: Mapped[bool | None] = mapped_column()
    # The shopper may choose to save the card (a box on the page); save_card forces it.
    offer_save_card: Mapped[bool | None] = mapped_column(server_default=false())
    success_url: Mapped[str | None] = mapped_column(String(2048))
    cancel_url: Mapped[str | None] = mapped_column(String(2048))
    # Count of pay (or card registration) attempts, for card-testing limits.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The card a 'card_registration' session registered (gateway num).
    card_num: Mapped[int | None] = mapped_column(Integer)
    # The payment methods the shop offers on the page (md codes "10", "61", "80"; NULL: lump
    # sum only) and, with "61", the installment counts (pt) it allows.
    payment_methods: Mapped[list[str] | None] = mapped_column(JSON)
    installment_counts: Mapped[list[int] | None] = mapped_column(JSON)
    # The merchant's metadata, sent with the charge as free parameters (その他データ).
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON)
    expires_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def total(self) -> int:
        """What a payment page charges in all (a card page charges nothing: 0)."""
        return (self.amount or 0) + (self.tax or 0) + (self.shipping or 0)
