"""How far a leased sweep over the gateway's records has got (one row per sweep), and the
history of reconciliation passes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class SweepCursor(Base):
    __tablename__ = "sweep_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Everything the gateway created before this instant has been looked at.
    position: Mapped[datetime]
    # The replica running the sweep holds it until then; the token fences its writes.
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReconcilePass(Base):
    """One reconciliation pass: by hand (console, API) from its start, with its progress;
    the janitor's own only when it checked something (an idle pass every 30 s is no news)."""

    __tablename__ = "reconcile_passes"
    __table_args__ = (Index("ix_reconcile_passes_started", "started_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    trigger: Mapped[str] = mapped_column(String(16))  # console | api | janitor
    actor: Mapped[str | None] = mapped_column(String(64))  # "ops:<key label>"
    scope: Mapped[str] = mapped_column(String(8))  # open | due
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|failed
    # Payments the pass took (known once leased), and its figures so far.
    total: Mapped[int | None]
    checked: Mapped[int] = mapped_column(Integer, default=0)
    settled: Mapped[int] = mapped_column(Integer, default=0)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    rescheduled: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    orphans: Mapped[int] = mapped_column(Integer, default=0)
    # What it changed: [{"payment_id", "result", "from", "to", "note"}] for each payment it
    # settled, flagged or failed on (the first CHANGES_KEPT), and the orphans it flagged.
    changes: Mapped[list[dict[str, str | None]]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Written with each progress step: a running pass whose heartbeat is old was interrupted
    # (its process stopped); the leases it held expire by themselves.
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
