"""A payment's row lock and its event trail: the two things every payment write needs (kept
apart from service.py so that evidence.py, which service.py uses, can use them too)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import KICKBACK_EXPECTED_SECONDS
from app.events import outbox
from app.logging import request_id_var
from app.payments.models import Payment, PaymentEvent

# First re-check of an unknown/pending payment; the janitor backs off from there.
FIRST_CHECK_DELAY = timedelta(minutes=1)
# When an rt=0 payment's kickback is late: the gateway sends it within about 30 s
# (GATEWAY.md, "Kickback"), so the charges search is asked then instead of after a minute.
# The default of KICKBACK_EXPECTED_SECONDS, for callers without settings.
KICKBACK_EXPECTED = timedelta(seconds=KICKBACK_EXPECTED_SECONDS)


def _render(p: Payment) -> dict[str, Any]:
    # Imported here: the schemas import what imports this module.
    from app.payments.schemas import PaymentOut

    return PaymentOut.of(p).model_dump(mode="json")


outbox.register(Payment, "payment", _render, lambda p: p.id)

# The trail's status changes the shop is told of, in its words.
_TOLD = {"authorized", "captured", "canceled", "failed", "unknown"}


def _tell(session: AsyncSession, payment: Payment, type_: str, to_status: str | None) -> None:
    """The one mapping from a payment's trail to the shop's events."""
    if type_ == "status_changed" and to_status in _TOLD:
        outbox.emit(session, f"payment.{to_status}", payment)
        if payment.kind == "reauth" and to_status in ("authorized", "captured"):
            outbox.emit(session, "payment.reauthorized", payment)
    elif type_ in ("flagged", "orphan_found"):
        outbox.emit(session, "payment.needs_attention", payment)


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
    _tell(session, payment, type_, to_status)


async def lock_payment(session: AsyncSession, payment_id: str) -> Payment | None:
    # Fresh values under the lock, even for a row this session has read before.
    stmt = (
        select(Payment)
        .where(Payment.id == payment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()
