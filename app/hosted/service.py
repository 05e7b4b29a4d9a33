"""Opening a hosted page, and the guards every page's form post runs on its row."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.errors import AppError, Conflict, Gone, NotFound, TooManyRequests
from app.hosted.models import CheckoutSession, Kind
from app.idempotency import bind
from app.metrics import VELOCITY_REJECTIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaymentTerms:
    """What a payment page charges (fixed server-side); card pages have none."""

    job: str
    amount: int
    tax: int = 0
    shipping: int = 0
    item_code: str | None = None
    order_id: str | None = None
    save_card: bool = False
    offer_save_card: bool = False
    payment_methods: tuple[str, ...] = ("10",)
    installment_counts: tuple[int, ...] = ()
    metadata: dict[str, str] | None = None


async def open_page(
    session: AsyncSession,
    kind: Kind,
    *,
    expires_in_minutes: int,
    email: str | None,
    phone: str | None,
    success_url: str | None,
    cancel_url: str | None,
    customer_uid: str | None = None,
    payment: PaymentTerms | None = None,
) -> CheckoutSession:
    """The one constructor of a hosted page: adds the row to `session` and binds the request's
    Idempotency-Key to it; the caller commits (with whatever else the page needs)."""
    if (payment is None) != (kind != Kind.PAYMENT):
        raise ValueError("payment terms are given for a payment page, and only for one")
    cs = CheckoutSession(
        id=new_id("cs"),
        kind=kind.value,
        status="open",
        # A card page charges nothing: it has no payment terms (NULL, a CHECK says so).
        job=payment.job if payment else None,
        amount=payment.amount if payment else None,
        tax=payment.tax if payment else None,
        shipping=payment.shipping if payment else None,
        item_code=payment.item_code if payment else None,
        order_id=payment.order_id if payment else None,
        save_card=payment.save_card if payment else None,
        offer_save_card=payment.offer_save_card if payment else None,
        payment_methods=list(payment.payment_methods) if payment else None,
        installment_counts=list(payment.installment_counts) if payment else None,
        metadata_=payment.metadata if payment else None,
        customer_uid=customer_uid,
        email=email,
        phone=phone,
        success_url=success_url,
        cancel_url=cancel_url,
        attempts=0,
        expires_at=utcnow() + timedelta(minutes=expires_in_minutes),
    )
    session.add(cs)
    await bind(session, "checkout_session", cs.id)
    return cs


async def find(sessions: async_sessionmaker[AsyncSession], cs_id: str) -> CheckoutSession | None:
    """The page's row as it is now (its own short transaction)."""
    async with sessions() as session:
        return await session.get(CheckoutSession, cs_id)


async def kind_of(sessions: async_sessionmaker[AsyncSession], cs_id: str) -> Kind | None:
    async with sessions() as session:
        kind = await session.scalar(select(CheckoutSession.kind).where(CheckoutSession.id == cs_id))
    return Kind(kind) if kind is not None else None


def is_expired(cs: CheckoutSession) -> bool:
    return cs.status == "expired" or (cs.status == "open" and cs.expires_at <= utcnow())


def ensure_payable(cs: CheckoutSession | None) -> CheckoutSession:
    """The session if it can still be paid; NotFound / Conflict / Gone otherwise."""
    if cs is None:
        raise NotFound("This checkout session does not exist.")
    if cs.status == "completed":
        raise Conflict("This checkout session has already been paid.", code="already_paid")
    if is_expired(cs):
        raise Gone("This checkout session has expired; please start again from the shop.")
    return cs


# A card page's 'processing' claim older than this was left by a process that died mid-call
# (no gateway call, 429 retries included, runs this long): the page may be used again.
ABANDONED_CLAIM = timedelta(minutes=10)


def ensure_not_claimed(cs: CheckoutSession) -> None:
    """Conflict while another request registers a card on this page; a claim abandoned by a
    dead process is taken over (the card it registered, if any, shows up in a sync)."""
    if cs.status != "processing":
        return
    if cs.updated_at > utcnow() - ABANDONED_CLAIM:
        raise Conflict("This card is already being registered.", code="in_progress")
    log.warning("card page %s: taking over a claim abandoned at %s", cs.id, cs.updated_at)


async def lock_card_page(
    session: AsyncSession, cs_id: str, kind: Kind, *, per_session: int, wrong_kind: AppError
) -> CheckoutSession:
    """A card page's row, locked for its form post: open, of `kind` (else `wrong_kind` is
    raised), not claimed by another post and under `per_session` attempts (0: no limit)."""
    stmt = select(CheckoutSession).where(CheckoutSession.id == cs_id).with_for_update()
    cs = ensure_payable((await session.execute(stmt)).scalar_one_or_none())
    if cs.kind != kind:
        raise wrong_kind
    ensure_not_claimed(cs)
    if attempts_exhausted(cs, per_session):
        VELOCITY_REJECTIONS.labels("session").inc()
        raise TooManyRequests("Too many attempts for this page.", code="too_many_attempts")
    return cs


def claim(cs: CheckoutSession) -> None:
    """One more attempt, and the page is 'processing' (the claim) until `release`."""
    cs.attempts += 1
    cs.status = "processing"


async def release(
    sessions: async_sessionmaker[AsyncSession], cs_id: str, *, completed: bool
) -> None:
    """Ends a card page's claim: completed, or open again for another try."""
    async with sessions() as session:
        row = await session.get(CheckoutSession, cs_id, with_for_update=True)
        if row is not None and row.status == "processing":
            row.status = "completed" if completed else "open"
        await session.commit()


# A success_url may carry this, replaced with the session's id on the way back to the shop, so
# the shop's thank-you page can look the session up (GET /v1/checkout/sessions/{id}).
SESSION_ID_PLACEHOLDER = "{CHECKOUT_SESSION_ID}"


def back_to_shop(cs: CheckoutSession, succeeded: bool) -> str | None:
    """The shop's page the shopper returns to: success_url (placeholder filled) or
    cancel_url."""
    if not succeeded:
        return cs.cancel_url
    if cs.success_url is None:
        return None
    return cs.success_url.replace(SESSION_ID_PLACEHOLDER, cs.id)


def attempts_exhausted(cs: CheckoutSession, per_session: int) -> bool:
    """The page has used its attempts (VELOCITY_MAX_ATTEMPTS_PER_SESSION; 0 = no limit)."""
    return bool(per_session) and cs.attempts >= per_session
