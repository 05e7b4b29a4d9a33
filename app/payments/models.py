"""Payments and their event trail."""

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
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

PAYMENT_STATUSES = ("pending", "authorized", "captured", "canceled", "failed", "unknown")
_STATUS_SQL = ", ".join(f"'{s}'" for s in PAYMENT_STATUSES)


# payments.tds_state while the shopper may still come back from 3-D Secure (three_ds.py).
TDS_REDIRECTED = "redirected"


class Payment(Base):
    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status"),
        # 'orphan': a charge the gateway shows that no payment of ours made (the orphan sweep).
        CheckConstraint("kind IN ('checkout', 'onetouch', 'reauth', 'orphan')", name="kind"),
        CheckConstraint("job IN ('AUTH', 'CAPTURE', 'CHECK')", name="job"),
        CheckConstraint("amount >= 0 AND tax >= 0 AND shipping >= 0", name="amounts"),
        # One charge per checkout session is a database fact: at most one payment of a session
        # that is not 'failed' (a declined attempt may be retried; a live or unknown one never).
        Index(
            "uq_payments_live_per_session",
            "checkout_session_id",
            unique=True,
            postgresql_where=text("status <> 'failed' AND checkout_session_id IS NOT NULL"),
            sqlite_where=text("status <> 'failed' AND checkout_session_id IS NOT NULL"),
        ),
        Index("ix_payments_created_id", "created_at", "id"),
        # The ops list filters by customer or status and pages newest first: these keep a page
        # an index range scan however many payments there are.
        Index("ix_payments_customer_created", "customer_uid", "created_at", "id"),
        Index("ix_payments_status_created", "status", "created_at", "id"),
        Index("ix_payments_status_next_check", "status", "next_check_at"),
        # The few that need a person: counted on the console's home and listed by it.
        Index(
            "ix_payments_needs_attention",
            "created_at",
            "id",
            postgresql_where=text("needs_attention"),
            sqlite_where=text("needs_attention"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    job: Mapped[str] = mapped_column(String(8))
    checkout_session_id: Mapped[str | None] = mapped_column(
        ForeignKey("checkout_sessions.id", ondelete="RESTRICT"), index=True
    )
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # What was sent as the gateway's cod (店舗オーダー番号): the order id, else our id without
    # its "_" (cod is letters, digits or Japanese); a re-authorization keeps its parent's.
    cod: Mapped[str] = mapped_column(String(64), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    tax: Mapped[int] = mapped_column(Integer, default=0)
    shipping: Mapped[int] = mapped_column(Integer, default=0)
    item_code: Mapped[str | None] = mapped_column(String(50))
    customer_uid: Mapped[str | None] = mapped_column(String(50))
    card_num: Mapped[int | None] = mapped_column(Integer)
    # Gateway references: payment number, order code, approval number.
    gid: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    god: Mapped[str | None] = mapped_column(String(32))
    ap: Mapped[str | None] = mapped_column(String(16))
    # The content ID and password the gateway issues with a product-registered payment (id/ps,
    # seed 000 pp.13, 18: 商品登録あり with contents registered), for the shopper.
    content_id: Mapped[str | None] = mapped_column(String(100))
    content_password: Mapped[str | None] = mapped_column(String(100))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(String(500))
    result_mode: Mapped[int] = mapped_column(Integer, default=1)
    reauth_of_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), index=True)
    created_by: Mapped[str | None] = mapped_column(String(64))
    # Reconciliation bookkeeping for 'unknown' and stale 'pending' payments.
    check_attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[datetime | None]
    needs_attention: Mapped[bool] = mapped_column(default=False)
    # True from a pay's claim until its "about to send" mark (a conditional update just before
    # the gateway call): while set, the request provably has not left, so once the claim has
    # expired the payment may be failed at once. Rows made by other paths count as sent.
    unsent: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The merchant's metadata as sent in the gateway's free parameters (その他データ); the
    # gateway's echo stays in the audit (gateway_calls) and the stored kickback.
    metadata_: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON)
    # A token pay that needs 3-D Secure first (SBPS TA02-00101-101): the gateway's
    # authentication id, where the shopper is sent, and the step's state: 'redirected' (the
    # shopper may come back; nothing charged), 'authorizing' (our authorization call was
    # claimed: never sent again), 'expired' (never came back; failed). docs/gateway.md.
    tds_authentication_id: Mapped[str | None] = mapped_column(String(64))
    tds_redirect_url: Mapped[str | None] = mapped_column(String(1000))
    tds_state: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def total(self) -> int:
        return self.amount + self.tax + self.shipping

    @property
    def three_ds_url(self) -> str | None:
        """Where the shopper still has to go for 3-D Secure (None once the step is claimed,
        over, or there is none): app/payments/three_ds.py."""
        if self.status == "pending" and self.tds_state == TDS_REDIRECTED:
            return self.tds_redirect_url
        return None


class PaymentEvent(Base):
    """Append-only trail of what happened to a payment, and who did it."""

    __tablename__ = "payment_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    payment_id: Mapped[str] = mapped_column(ForeignKey("payments.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(500))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
