"""The kickback inbox: every notification stored raw before anything else happens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

# deferred: waiting for the charges search to confirm it (asked again at next_attempt_at).
KICKBACK_STATUSES = (
    "received",
    "applied",
    "duplicate",
    "unmatched",
    "flagged",
    "invalid",
    "error",
    "deferred",
)
# Not finished yet: the replayer picks these up again.
UNPROCESSED = ("received", "error", "deferred")
_STATUS_SQL = ", ".join(f"'{s}'" for s in KICKBACK_STATUSES)


class Kickback(Base):
    __tablename__ = "kickbacks"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_SQL})", name="status"),
        Index("ix_kickbacks_status_next_attempt", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    # Arrived on the secret path from an allowed peer (never the path itself: it is a secret).
    trusted: Mapped[bool] = mapped_column(default=False)
    method: Mapped[str] = mapped_column(String(8))
    raw_query: Mapped[bytes] = mapped_column(LargeBinary)
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str | None] = mapped_column(String(200))
    gid: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # Hash of the result fields: equal keys are the same notification delivered again.
    dedupe_key: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="received", index=True)
    payment_id: Mapped[str | None] = mapped_column(String(40), index=True)
    note: Mapped[str | None] = mapped_column(String(500))
    # Set when the row was replayed from the local spool after a database outage.
    spool_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    processed_at: Mapped[datetime | None]
    # Verification tries so far, and when a deferred one is asked again.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
