"""Call-and-record: how every charge of ours reaches the gateway once and is recorded.

The use case persists its attempt first (a pending payment, committed with whatever claims
it: a checkout session's row, an Idempotency-Key). Then `send_and_record`: the "about to send"
mark (the fence against a process that finds the claim expired and fails the payment), the
gateway call with no transaction open, and the answer recorded through evidence.apply under
the payment's row lock; an answer that cannot be stored leaves the payment unknown and
flagged, never pending. Functions here take an async_sessionmaker: they own their
transactions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.crash import crash_point
from app.errors import DATABASE_DOWN_NOT_CHARGED, database_guard
from app.gateway.base import ChargeResult
from app.payments import evidence, service
from app.payments.models import Payment
from app.payments.rows import KICKBACK_EXPECTED

log = logging.getLogger(__name__)

# Extra writes in the answer's own transaction (e.g. the card the charge registered).
Recorder = Callable[[AsyncSession, Payment, ChargeResult], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Sent:
    payment: Payment
    result: ChargeResult | None  # None: not sent (the claim was lost before the mark)
    recorded: bool = True  # False: the answer could not be stored (the payment is unknown)


async def send_and_record(
    sessions: async_sessionmaker[AsyncSession],
    payment_id: str,
    send: Callable[[], Awaitable[ChargeResult]],
    *,
    crash_at: str,
    after_send: Callable[[ChargeResult], Awaitable[None]] | None = None,
    record: Recorder | None = None,
    kickback_expected: timedelta = KICKBACK_EXPECTED,
) -> Sent:
    """Marks `payment_id` "about to send", calls `send` with no transaction open and records
    its answer. `after_send` runs between the two (its own transactions). Without a database
    at the mark nothing is sent: a clean 503, nothing charged."""
    crash_point(crash_at)
    async with database_guard(DATABASE_DOWN_NOT_CHARGED):
        marked = await service.mark_sending(sessions, payment_id)
    if not marked:
        # Another process found this claim expired and failed the payment: never send.
        async with sessions() as session:
            p = await session.get(Payment, payment_id)
            assert p is not None
            return Sent(p, None)
    result = await send()
    if after_send is not None:
        await after_send(result)
    return await record_answer(
        sessions, payment_id, result, record=record, kickback_expected=kickback_expected
    )


async def record_answer(
    sessions: async_sessionmaker[AsyncSession],
    payment_id: str,
    result: ChargeResult,
    *,
    record: Recorder | None = None,
    kickback_expected: timedelta = KICKBACK_EXPECTED,
) -> Sent:
    """Records `result` on the payment in its own transaction; if that fails, the payment is
    made unknown and flagged (reconciliation settles it from the gateway's records).
    `kickback_expected`: when an rt=0 answer's kickback is late (its first check)."""
    try:
        async with sessions() as session:
            applied = await evidence.record_answer(
                session, payment_id, result, kickback_expected=kickback_expected
            )
            p = applied.payment
            if record is not None:
                await record(session, p, result)
            await session.commit()
            return Sent(p, result)
    except Exception:
        log.exception("payment %s: result not recorded", payment_id)
        async with sessions() as session:
            locked = await service.mark_unrecorded(session, payment_id)
            await session.commit()
            return Sent(locked, result, recorded=False)
