"""The redirect 3-D Secure step of a token pay (SBPS: TA02-00101-101, the shopper's browser at
the card issuer, then ST01-00118-101). docs/gateway.md "SBPS 3-D Secure".

A payment that needs it stays `pending` with `tds_state`:
- 'redirected': TA02 answered; nothing is charged and nothing will be unless WE make the
  authorization call. The shopper may come back (our return URL) until THREE_DS_WINDOW;
- 'authorizing': one return won the conditional update below and makes (or made) the one
  authorization call; every other return, replayed or concurrent, only shows the payment;
- 'expired': the shopper never came back; failed by reconciliation under the same fence, so
  a late return can no longer authorize anything.
Functions here take an AsyncSession and never commit, except `claim_authorization`, which
takes the session factory (its commit is the fence).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.gateway.base import ChargeResult, Outcome
from app.payments import evidence
from app.payments.models import TDS_REDIRECTED, Payment
from app.payments.rows import FIRST_CHECK_DELAY
from app.payments.states import Status

REDIRECTED, AUTHORIZING, EXPIRED = TDS_REDIRECTED, "authorizing", "expired"
# How long a shopper may take at the card issuer's page. The simulator keeps an authentication
# usable for 15 minutes (tds_authentication_ttl_seconds); SBPS's own limit is not public (the
# notes), so ours is what the checkout session's page can wait for; after it the payment fails.
THREE_DS_WINDOW = timedelta(minutes=20)
# Our own code for "the shopper never came back" (payments.error_code).
ABANDONED = "three_ds_abandoned"
_ABANDONED_MESSAGE = (
    "3-D Secure was not completed in time: the shopper did not come back. Nothing was charged."
)


def note_redirect(p: Payment, result: ChargeResult) -> None:
    """In the answer's transaction: a REDIRECT answer's authentication, and the check that
    fails the payment if the shopper never comes back."""
    if result.outcome is not Outcome.REDIRECT:
        return
    p.tds_authentication_id = result.authentication_id
    p.tds_redirect_url = result.redirect_url
    p.tds_state = REDIRECTED
    p.next_check_at = utcnow() + THREE_DS_WINDOW


def waiting_url(p: Payment) -> str | None:
    """Where the shopper still has to go (None once the step is claimed or over)."""
    return p.three_ds_url


async def claim_authorization(sessions: async_sessionmaker[AsyncSession], payment_id: str) -> bool:
    """The fence: True for exactly one caller, who then makes the one authorization call.
    Committed before the call, so a crash after it leaves 'authorizing' (never re-sent)."""
    async with sessions() as session:
        result = await session.execute(
            update(Payment)
            .where(
                Payment.id == payment_id,
                Payment.status == Status.PENDING,
                Payment.tds_state == REDIRECTED,
            )
            .values(tds_state=AUTHORIZING, next_check_at=utcnow() + FIRST_CHECK_DELAY)
        )
        await session.commit()
    return getattr(result, "rowcount", 0) == 1


async def expire_if_abandoned(
    session: AsyncSession, p: Payment, *, now: datetime, actor: str
) -> bool | None:
    """For reconciliation, `p` locked: None when `p` is not waiting for its shopper; else
    whether it failed now (False: still within the window, checked again at its end)."""
    if p.status != Status.PENDING or p.tds_state != REDIRECTED:
        return None
    due = p.created_at + THREE_DS_WINDOW
    if now < due:
        p.next_check_at = due
        return False
    p.tds_state = EXPIRED
    await evidence.apply(
        session,
        p.id,
        evidence.our_failure(ABANDONED, _ABANDONED_MESSAGE),
        actor=actor,
        reason="3-D Secure not completed within its window",
        data={"source": "three_ds_window"},
    )
    return True
