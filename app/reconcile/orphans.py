"""The orphan sweep: successful charges in the gateway's records that no payment of ours holds.

Every payment row is written before its gateway call, so a charge without one was made by
something else (the control panel, another system) or by a path that lost its row. The sweep
walks the charges search forward in fixed windows, one search per window (not one per gid),
from a cursor kept in the database. A window is searched once it ended at least `grace` ago
(longer than any pay in flight, so a charge whose row is about to get its gid is left alone).
A charge whose gid no payment holds, and that no open payment without gid can still claim
(same cod + total within the match window: the janitor settles that one), becomes a payment of
kind `orphan`, flagged `needs_attention`, with an `orphan_found` event, an ERROR log line and
`rp_orphan_charges_total`. One replica sweeps at a time (a lease on the cursor row); the cursor
only moves under that lease.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import new_id, utcnow
from app.gateway.base import ChargeRecord, PaymentGateway, SearchError
from app.metrics import ORPHAN_CHARGES, ORPHAN_SWEEP_WINDOWS
from app.payments import service as payments
from app.payments.models import Payment
from app.payments.states import Status
from app.reconcile.matching import MATCH_WINDOW, status_of
from app.reconcile.models import SweepCursor

log = logging.getLogger(__name__)

NAME = "orphans"
ACTOR = "orphan-sweep"
# Longer than a pass of searches takes; a sweeper that dies just lets it run out.
LEASE = timedelta(minutes=5)
# At most this many windows per pass (a replica catching up after downtime does it in steps).
MAX_WINDOWS = 24
OPEN = (Status.PENDING, Status.UNKNOWN)
_JOB = {"SALES": "CAPTURE", "CAPTURE": "CAPTURE", "CHECK": "CHECK"}


@dataclass(frozen=True)
class SweepSettings:
    interval: float  # seconds between passes of one replica
    window: timedelta
    grace: timedelta

    @classmethod
    def of(cls, settings: Settings) -> SweepSettings | None:
        """The sweep's settings; None when it is off (ORPHAN_SWEEP_INTERVAL_SECONDS=0)."""
        if settings.orphan_sweep_interval_seconds <= 0:
            return None
        return cls(
            interval=settings.orphan_sweep_interval_seconds,
            window=timedelta(seconds=settings.orphan_sweep_window_seconds),
            grace=timedelta(seconds=settings.orphan_sweep_grace_seconds),
        )


@dataclass
class SweepSummary:
    ran: bool = False  # False: another replica holds the sweep, or nothing is due
    windows: int = 0
    charges: int = 0  # successful charges looked at
    orphans: list[str] = field(default_factory=list)  # the flagged payments made
    position: datetime | None = None  # everything created before this has been looked at


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    settings: SweepSettings,
    *,
    now: datetime | None = None,
) -> SweepSummary:
    """One pass: every complete window since the cursor, at most MAX_WINDOWS of them. The
    first pass ever starts one window before `now - grace`."""
    now = now or utcnow()
    horizon = now - settings.grace
    summary = SweepSummary()
    leased = await _lease(sessions, now=now, start=horizon - settings.window)
    if leased is None:
        return summary
    token, position = leased
    summary.ran, summary.position = True, position
    try:
        for _ in range(MAX_WINDOWS):
            end = position + settings.window
            if end > horizon:
                break
            try:
                records = await gateway.search_charges(created_from=position, created_to=end)
            except SearchError as exc:
                log.warning("orphan sweep: search %s..%s failed: %s", position, end, exc)
                break
            ORPHAN_SWEEP_WINDOWS.inc()
            summary.windows += 1
            charged = [r for r in records if status_of(r) in _SUCCESS]
            summary.charges += len(charged)
            summary.orphans += await _adopt(sessions, charged)
            position = end
            if not await _advance(sessions, token, position):
                break  # the lease ran out and another replica took over
            summary.position = position
    finally:
        await _release(sessions, token)
    return summary


_SUCCESS = (Status.AUTHORIZED, Status.CAPTURED, Status.CANCELED)


async def _lease(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, start: datetime
) -> tuple[str, datetime] | None:
    token = secrets.token_hex(16)
    async with sessions() as session:
        row = await session.get(SweepCursor, NAME, with_for_update=True)
        if row is None:
            session.add(SweepCursor(name=NAME, position=start))
            try:
                await session.flush()
            except IntegrityError:
                return None  # another replica made it just now: it sweeps
            row = await session.get(SweepCursor, NAME)
            assert row is not None
        elif row.lease_until is not None and row.lease_until > now:
            return None
        row.lease_until, row.lease_token = now + LEASE, token
        position = row.position
        await session.commit()
    return token, position


async def _advance(
    sessions: async_sessionmaker[AsyncSession], token: str, position: datetime
) -> bool:
    async with sessions() as session:
        result = await session.execute(
            update(SweepCursor)
            .where(SweepCursor.name == NAME, SweepCursor.lease_token == token)
            .values(position=position, lease_until=utcnow() + LEASE)
        )
        await session.commit()
    return getattr(result, "rowcount", 0) == 1


async def _release(sessions: async_sessionmaker[AsyncSession], token: str) -> None:
    async with sessions() as session:
        await session.execute(
            update(SweepCursor)
            .where(SweepCursor.name == NAME, SweepCursor.lease_token == token)
            .values(lease_until=None, lease_token=None)
        )
        await session.commit()


async def _adopt(
    sessions: async_sessionmaker[AsyncSession], charged: Sequence[ChargeRecord]
) -> list[str]:
    """Flagged payments for the charges nobody holds or can claim; their ids."""
    if not charged:
        return []
    async with sessions() as session:
        held = set(
            (
                await session.execute(
                    select(Payment.gid).where(Payment.gid.in_([r.charge_id for r in charged]))
                )
            ).scalars()
        )
        loose = [r for r in charged if r.charge_id not in held]
        loose = [r for r in loose if not await _claimable(session, r)]
    made = []
    for record in loose:
        pid = await _flag_orphan(sessions, record)
        if pid is not None:
            made.append(pid)
    return made


async def _claimable(session: AsyncSession, record: ChargeRecord) -> bool:
    """An open payment without gid that the janitor may still match to this charge."""
    at = record.created_at or utcnow()
    cod = (record.order_ref or "").strip()
    candidates = (
        await session.execute(
            select(Payment).where(
                Payment.status.in_(OPEN),
                Payment.gid.is_(None),
                Payment.cod == cod,
                Payment.created_at >= at - MATCH_WINDOW,
                Payment.created_at <= at + MATCH_WINDOW,
            )
        )
    ).scalars()
    return any(p.item_code or p.total == record.total for p in candidates)


async def _flag_orphan(
    sessions: async_sessionmaker[AsyncSession], record: ChargeRecord
) -> str | None:
    status = status_of(record)
    assert status is not None
    found = {
        "gid": record.charge_id,
        "cod": record.order_ref,
        "ta": record.total,
        "jb": record.job,
        "rst": record.result_code,
        "cd": record.created_at.isoformat() if record.created_at else None,
    }
    async with sessions() as session:
        p = Payment(
            id=new_id("pay"),
            kind="orphan",
            status=status,
            job=_JOB.get((record.job or "").upper(), "AUTH"),
            order_id=(record.order_ref or "").strip()[:64] or None,
            cod=(record.order_ref or "").strip()[:64],
            amount=record.amount or 0,
            tax=record.tax or 0,
            shipping=record.shipping or 0,
            gid=record.charge_id,
            result_mode=1,
            created_by=ACTOR,
            check_attempts=0,
            needs_attention=True,
        )
        session.add(p)
        payments.add_event(
            session,
            p,
            "orphan_found",
            to_status=status,
            actor=ACTOR,
            reason="a charge in the gateway's records that no payment of ours made",
            data=found,
        )
        try:
            await session.commit()
        except IntegrityError:
            return None  # a payment took the gid meanwhile: not an orphan after all
    ORPHAN_CHARGES.inc()
    log.error(
        "orphan charge: gid %s (cod %r, %s yen, %s) is in the gateway's records but no payment "
        "of ours made it; payment %s flagged for a person",
        record.charge_id,
        record.order_ref,
        record.total,
        status,
        p.id,
    )
    return p.id
