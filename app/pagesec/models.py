"""The CSP violations browsers reported, deduplicated: one row per (directive, blocked URI,
page), with when it was first and last seen and how often."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class CspReport(Base):
    __tablename__ = "csp_reports"
    __table_args__ = (
        # The console lists the newest first.
        Index("ix_csp_reports_last_seen", "last_seen", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # SHA-256 hex of the three below: what a repeat is counted on (the URLs are too long for
    # a unique index of their own).
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    directive: Mapped[str] = mapped_column(String(32))  # one of reports.DIRECTIVES or "other"
    blocked_uri: Mapped[str] = mapped_column(String(512))  # no query, no fragment, no card data
    page: Mapped[str] = mapped_column(String(512))  # the same; ids in its path as {id}
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(BigInteger, default=1)
