"""Payment use cases shared by checkout, one-touch, kickbacks and ops.

Pattern for every gateway call: persist the attempt and commit, call the gateway with no
transaction or row lock held, then record the result under a row lock (evidence.apply: the
one place a payment's status, references, amounts and error change).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import PAY_CLAIM_SECONDS
from app.db import utcnow
from app.gateway.audit import GatewayCallLog
from app.payments import evidence
from app.payments.models import Payment, PaymentEvent
from app.payments.rows import FIRST_CHECK_DELAY as FIRST_CHECK_DELAY
from app.payments.rows import add_event as add_event
from app.payments.rows import lock_payment as lock_payment
from app.payments.states import Status

# How long a pay may take from claiming its payment to the "about to send" mark (a card
# registration and its read-back may come first: two gateway calls). After this, a pending
# payment without the mark provably never left and is failed (PAY_CLAIM_SECONDS).
PAY_CLAIM = timedelta(seconds=PAY_CLAIM_SECONDS)
NOT_SENT = "not_sent"
_NOT_SENT_MESSAGE = (
    "Never sent to the gateway: the process that started it stopped before the call. "
    "Nothing was charged."
)


async def mark_unrecorded(session: AsyncSession, payment_id: str) -> Payment:
    """The gateway answered but its answer could not be stored: never leave 'pending' (it
    looks retryable); 'unknown' and flagged, for reconciliation to settle from the gateway's
    records. The caller commits."""
    applied = await evidence.apply(
        session,
        payment_id,
        evidence.Evidence(
            source=evidence.Source.SYSTEM, claim=evidence.Claim.UNKNOWN, flag="result not recorded"
        ),
        actor="system",
        reason="result not recorded",
    )
    return applied.payment


async def mark_sending(sessions: async_sessionmaker[AsyncSession], payment_id: str) -> bool:
    """The "about to send" mark, committed just before the gateway call. False: the payment
    is no longer pending-and-unmarked (a process that found its claim expired failed it), so
    this one must not send. The conditional update is the fence: of the sender's mark and
    another process's `fail_if_never_sent`, exactly one wins."""
    async with sessions() as session:
        result = await session.execute(
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.status == Status.PENDING,
                Payment.unsent.is_(True),
            )
            .values(unsent=False)
        )
        await session.commit()
    return getattr(result, "rowcount", 0) == 1


def never_sent(payment: Payment, *, claim: timedelta, now: datetime | None = None) -> bool:
    """A pending payment whose pay claimed it longer than `claim` ago and never marked it
    "about to send": its request provably never left."""
    return (
        Status(payment.status) == Status.PENDING
        and payment.unsent
        and payment.created_at <= (now or utcnow()) - claim
    )


async def fail_if_never_sent(
    session: AsyncSession,
    payment: Payment,
    *,
    claim: timedelta,
    actor: str,
    now: datetime | None = None,
) -> bool:
    """Fails `payment` (locked by the caller, so it cannot be marked meanwhile) if it never
    left; the caller commits."""
    if not never_sent(payment, claim=claim, now=now):
        return False
    applied = await evidence.apply(
        session,
        payment.id,
        evidence.our_failure(NOT_SENT, _NOT_SENT_MESSAGE),
        actor=actor,
        reason="never sent: its claim expired without the about-to-send mark",
        data={"source": "claim_expired"},
    )
    return applied.moved


def cod_for(order_id: str | None, payment_id: str) -> str:
    """The cod a new payment is sent with: the merchant's order id, else our payment id
    without its "_" (`pay` + 32 hex: the seed's cod is letters, digits or Japanese)."""
    return order_id or payment_id.replace("_", "")


# --- queries for ops ---------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFilter:
    status: list[str] | None = None
    order_id: str | None = None
    customer_id: str | None = None
    gid: int | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    needs_attention: bool | None = None


def encode_cursor(payment: Payment) -> str:
    raw = json.dumps([payment.created_at.isoformat(), payment.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises ValueError on anything that is not a cursor we made."""
    padded = cursor + "=" * (-len(cursor) % 4)
    created, pid = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(created, str) or not isinstance(pid, str):
        raise ValueError("bad cursor")
    return datetime.fromisoformat(created), pid


def _filtered(f: PaymentFilter) -> Select[Payment]:
    stmt = select(Payment)
    if f.status:
        stmt = stmt.where(Payment.status.in_(f.status))
    if f.order_id is not None:
        stmt = stmt.where(Payment.order_id == f.order_id)
    if f.customer_id is not None:
        stmt = stmt.where(Payment.customer_uid == f.customer_id)
    if f.gid is not None:
        stmt = stmt.where(Payment.gid == f.gid)
    if f.created_from is not None:
        stmt = stmt.where(Payment.created_at >= f.created_from)
    if f.created_to is not None:
        stmt = stmt.where(Payment.created_at < f.created_to)
    total = Payment.amount + Payment.tax + Payment.shipping
    if f.amount_min is not None:
        stmt = stmt.where(total >= f.amount_min)
    if f.amount_max is not None:
        stmt = stmt.where(total <= f.amount_max)
    if f.needs_attention is not None:
        # The bare column (not IS TRUE): PostgreSQL then uses the partial index on it.
        stmt = stmt.where(
            Payment.needs_attention if f.needs_attention else ~Payment.needs_attention
        )
    return stmt


async def list_payments(
    session: AsyncSession, f: PaymentFilter, *, limit: int, cursor: tuple[datetime, str] | None
) -> tuple[list[Payment], str | None]:
    """Newest first, keyset-paginated on (created_at, id): stable while rows are inserted."""
    stmt = _filtered(f)
    if cursor is not None:
        created, pid = cursor
        # A row comparison, not `a < x OR (a = x AND b < y)`: PostgreSQL turns it into one
        # index range scan, so page 500 costs what page 1 does.
        stmt = stmt.where(tuple_(Payment.created_at, Payment.id) < tuple_(created, pid))
    stmt = stmt.order_by(Payment.created_at.desc(), Payment.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


async def find_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    return await session.get(Payment, payment_id)


async def payment_trail(
    session: AsyncSession, payment_id: str
) -> tuple[list[PaymentEvent], list[GatewayCallLog]]:
    events = (
        await session.execute(
            select(PaymentEvent)
            .where(PaymentEvent.payment_id == payment_id)
            .order_by(PaymentEvent.id)
        )
    ).scalars()
    calls = (
        await session.execute(
            select(GatewayCallLog)
            .where(GatewayCallLog.ref == payment_id)
            .order_by(GatewayCallLog.id)
        )
    ).scalars()
    return list(events), list(calls)
