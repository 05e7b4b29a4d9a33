"""The payment pages' integrity tables: the watcher's (every check, the 11.6.1 evidence; the
approvals, who and why; the current state of each script; the page (header) checks; the lease
one pass runs under) and the browsers' CSP violation reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

_SERIAL = BigInteger().with_variant(Integer, "sqlite")


class ScriptCheck(Base):
    """One fetch of one gateway script: what it hashed to, and the verdict."""

    __tablename__ = "script_checks"
    __table_args__ = (Index("ix_script_checks_key_fetched", "key", "fetched_at"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "sha384-<base64>" (the SRI form); None when the fetch failed.
    sha384: Mapped[str | None] = mapped_column(String(72))
    # ok | changed | unapproved | fetch_failed
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(String(500))


class ScriptApproval(Base):
    """A person (or the sandbox's first sight) approving one hash of one script: kept for ever
    as the audit trail 6.4.3 asks for."""

    __tablename__ = "script_approvals"
    __table_args__ = (Index("ix_script_approvals_key_at", "key", "approved_at"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(40))
    sha384: Mapped[str] = mapped_column(String(72))
    approved_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(String(500))
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScriptState(Base):
    """Where each script stands now (one row per key)."""

    __tablename__ = "script_states"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # pending (never fetched) | ok | changed | unapproved
    status: Mapped[str] = mapped_column(String(16))
    current_sha384: Mapped[str | None] = mapped_column(String(72))
    approved_sha384: Mapped[str | None] = mapped_column(String(72))
    # Since when the current hash differs from the approved one (None while ok).
    changed_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    # Fetches failed in a row (0 after a good one) and the last one's error.
    fetch_failures: Mapped[int] = mapped_column(default=0)
    fetch_error: Mapped[str | None] = mapped_column(String(500))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class PageCheck(Base):
    """One fetch of one of our payment pages: its security headers and scripts compared with
    what they must be (PCI DSS 11.6.1)."""

    __tablename__ = "page_checks"
    __table_args__ = (Index("ix_page_checks_page_checked", "page", "checked_at"),)

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    page: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2000))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    # ok | drift | fetch_failed
    status: Mapped[str] = mapped_column(String(16))
    # What differs, one readable line each ("X-Content-Type-Options: missing").
    problems: Mapped[list[Any]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(String(500))


class WatchLease(Base):
    """One pass at a time across replicas, and one pass per interval: the row's lease (the
    orphan sweep's pattern) and when the last pass finished."""

    __tablename__ = "watch_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    last_run_at: Mapped[datetime | None]


class CspReport(Base):
    """The CSP violations browsers reported, deduplicated: one row per (directive, blocked
    URI, page), with when it was first and last seen and how often."""

    __tablename__ = "csp_reports"
    __table_args__ = (
        # The console lists the newest first.
        Index("ix_csp_reports_last_seen", "last_seen", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(_SERIAL, primary_key=True, autoincrement=True)
    # SHA-256 hex of the three below: what a repeat is counted on (the URLs are too long for
    # a unique index of their own).
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    directive: Mapped[str] = mapped_column(String(32))  # one of reports.DIRECTIVES or "other"
    blocked_uri: Mapped[str] = mapped_column(String(512))  # no query, no fragment, no card data
    page: Mapped[str] = mapped_column(String(512))  # the same; ids in its path as {id}
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    count: Mapped[int] = mapped_column(BigInteger, default=1)
