"""Payment use cases shared by checkout, one-touch, kickbacks and ops.

Pattern for every gateway call: persist the attempt and commit, call the gateway with no
transaction or row lock held, then record the result under a row lock.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.models import CheckoutSession
from app.config import PAY_CLAIM_SECONDS
from app.db import utcnow
from app.gateway.audit import GatewayCallLog
from app.gateway.base import ChargeResult, Outcome
from app.logging import request_id_var
from app.metrics import observe_transition
from app.payments.models import Payment, PaymentEvent
from app.payments.states import Status, is_forward

# First re-check of an unknown/pending payment; the janitor backs off from there.
FIRST_CHECK_DELAY = timedelta(minutes=1)
# How long a pay may take from claiming its payment to the "about to send" mark (a card
# registration and its read-back may come first: two gateway calls). After this, a pending
# payment without the mark provably never left and is failed (PAY_CLAIM_SECONDS).
PAY_CLAIM = timedelta(seconds=PAY_CLAIM_SECONDS)
NOT_SENT = "not_sent"


def add_event(
    session: AsyncSession,
    payment: Payment,
    type_: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    actor: str | None = None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        PaymentEvent(
            payment_id=payment.id,
            type=type_,
            from_status=from_status,
            to_status=to_status,
            actor=actor,
            reason=reason,
            data=data,
            request_id=request_id_var.get(),
        )
    )


def move(
    session: AsyncSession,
    payment: Payment,
    target: Status,
    *,
    actor: str | None,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Moves the payment forward if the table allows it; a stale or backward update is a
    no-op (returns False), which is what late or duplicated gateway evidence needs."""
    current = Status(payment.status)
    if current == target or not is_forward(current, target):
        return False
    payment.status = target
    observe_transition(current, target)
    if target in (Status.UNKNOWN, Status.PENDING):
        payment.next_check_at = utcnow() + FIRST_CHECK_DELAY
    else:
        payment.next_check_at = None
    add_event(
        session,
        payment,
        "status_changed",
        from_status=current,
        to_status=target,
        actor=actor,
        reason=reason,
        data=data,
    )
    return True


async def settle(
    session: AsyncSession,
    payment: Payment,
    target: Status,
    *,
    actor: str,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """`move` for evidence that money moved (or did not), keeping the checkout session in
    step: a session whose payment succeeded is completed."""
    moved = move(session, payment, target, actor=actor, reason=reason, data=data)
    if moved and target in (Status.AUTHORIZED, Status.CAPTURED) and payment.checkout_session_id:
        cs = await session.get(CheckoutSession, payment.checkout_session_id, with_for_update=True)
        if cs is not None:
            cs.status = "completed"
    return moved


def success_status(job: str) -> Status:
    return Status.CAPTURED if job == "CAPTURE" else Status.AUTHORIZED


def status_for(result: ChargeResult, job: str) -> Status:
    match result.outcome:
        case Outcome.SUCCESS:
            return success_status(job)
        case Outcome.DECLINED | Outcome.FAILED | Outcome.UNAVAILABLE:
            return Status.FAILED
        case Outcome.PENDING:
            return Status.PENDING
        case _:
            return Status.UNKNOWN


def apply_charge_result(
    session: AsyncSession, payment: Payment, result: ChargeResult, *, actor: str | None
) -> bool:
    """Records what the gateway said about a charge on `payment` (locked by the caller)."""
    if result.gid and not payment.gid:
        payment.gid = result.gid
    if result.god:
        payment.god = payment.god or str(result.god)
    if result.ap:
        payment.ap = payment.ap or result.ap
    target = status_for(result, payment.job)
    current = Status(payment.status)
    # A late answer (a kickback or the janitor settled the payment first) must not replace
    # the real reason, e.g. a decline, with its own timeout.
    stale = current != target and not is_forward(current, target)
    if result.error is not None and not stale:
        payment.error_code = result.error.code
        payment.error_message = result.error.message_en
    if target == Status.PENDING and Status(payment.status) == Status.PENDING:
        payment.next_check_at = utcnow() + FIRST_CHECK_DELAY
        return False
    return move(
        session,
        payment,
        target,
        actor=actor,
        reason=result.error.message_en if result.error else None,
        data={"outcome": str(result.outcome), "gid": result.gid},
    )


async def mark_unrecorded(session: AsyncSession, payment_id: str) -> Payment:
    """The gateway answered but its answer could not be stored: never leave 'pending' (it
    looks retryable); 'unknown' and flagged, for reconciliation to settle from the gateway's
    records. The caller commits."""
    locked = await lock_payment(session, payment_id)
    assert locked is not None
    move(session, locked, Status.UNKNOWN, actor="system", reason="result not recorded")
    locked.needs_attention = True
    return locked


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
    payment.error_code = NOT_SENT
    payment.error_message = (
        "Never sent to the gateway: the process that started it stopped before the call. "
        "Nothing was charged."
    )
    return await settle(
        session,
        payment,
        Status.FAILED,
        actor=actor,
        reason="never sent: its claim expired without the about-to-send mark",
        data={"source": "claim_expired"},
    )


async def cod_of(session: AsyncSession, p: Payment) -> str:
    """What we sent as cod: the order id, else the payment id; a re-authorization keeps
    the cod of the payment it replaced (the gateway copies it)."""
    root = p
    for _ in range(20):
        if root.reauth_of_id is None:
            break
        parent = await session.get(Payment, root.reauth_of_id)
        if parent is None:
            break
        root = parent
    return root.order_id or root.id


async def lock_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    # Fresh values under the lock, even for a row this session has read before.
    stmt = (
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


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
        stmt = stmt.where(Payment.needs_attention.is_(f.needs_attention))
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
