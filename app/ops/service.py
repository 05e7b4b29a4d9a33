"""What the console's pages read: each function takes the session factory and runs its own
short, read-only transaction (the router never queries)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from urllib.parse import unquote_to_bytes

from sqlalchemy import Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from app.billing.models import BillingCardRegistration
from app.customers import service as customers
from app.customers.models import Card, Customer, CustomerEvent
from app.db import utcnow
from app.events import gauges as event_gauges
from app.gateway.text import decode_bytes
from app.hosted.models import CheckoutSession
from app.kickbacks import gauges as kickback_gauges
from app.kickbacks.models import Kickback
from app.pagesec import reports as csp_reports
from app.pagesec.models import CspReport
from app.payments import gauges as payment_gauges
from app.payments import service as payments
from app.payments.models import Payment
from app.payments.schemas import PaymentDetail

_Row = TypeVar("_Row")


@dataclass(frozen=True)
class Overview:
    """The home page: the same figures /metrics shows (one reading of each), payments
    counted only in their open statuses (the home's cost must not grow with the table)."""

    payments: payment_gauges.PaymentFigures
    kickbacks: kickback_gauges.KickbackFigures
    events: event_gauges.EventFigures
    # Distinct CSP violations the payment pages reported in the last 24 hours.
    csp_reports_24h: int = 0

    @property
    def needs_someone(self) -> bool:
        p = self.payments
        return bool(
            p.needs_attention
            or p.by_status.get("unknown")
            or p.stale_pending
            or self.kickbacks.backlog
            or self.events.failing_endpoints
            or self.csp_reports_24h
        )


async def overview(sessions: async_sessionmaker[AsyncSession]) -> Overview:
    now = utcnow()
    async with sessions() as session:
        return Overview(
            await payment_gauges.figures(session, now, payment_gauges.OPEN_STATUSES),
            await kickback_gauges.figures(session, now),
            await event_gauges.figures(session, now),
            await csp_reports.seen_since(session, now - timedelta(hours=24)),
        )


async def payments_page(
    sessions: async_sessionmaker[AsyncSession],
    f: payments.PaymentFilter,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[Payment], str | None]:
    """One page of the list, newest first (the API's keyset pages); a cursor that is not
    one of ours gives the first page."""
    try:
        decoded = payments.decode_cursor(cursor) if cursor else None
    except (ValueError, TypeError):
        decoded = None
    async with sessions() as session:
        rows, next_cursor = await payments.list_payments(session, f, limit=limit, cursor=decoded)
        return list(rows), next_cursor


async def payment_detail(
    sessions: async_sessionmaker[AsyncSession], payment_id: str
) -> PaymentDetail | None:
    """A payment with its trail, exactly as `GET /v1/payments/{id}` shows it."""
    async with sessions() as session:
        payment = await payments.find_payment(session, payment_id)
        if payment is None:
            return None
        events, calls = await payments.payment_trail(session, payment_id)
        return PaymentDetail.build(payment, events, calls)


# --- keyset pages --------------------------------------------------------------------------------


def _after(cursor: str | None, key_ok: Callable[[str], bool]) -> tuple[datetime, str] | None:
    """The (created, key) a list cursor names; None for no cursor or one that is not ours (a
    link from before, an edited URL: the list's first page, not an error)."""
    created_at, sep, key = (cursor or "").partition("|")
    if not sep or not key_ok(key):
        return None
    try:
        return datetime.fromisoformat(created_at), key
    except ValueError:
        return None


async def _newest_first(
    sessions: async_sessionmaker[AsyncSession],
    stmt: Select[_Row],
    created: InstrumentedAttribute[datetime],
    key: InstrumentedAttribute[str],
    cursor: str | None,
    limit: int,
    *,
    key_ok: Callable[[str], bool] = bool,
) -> tuple[list[_Row], str | None]:
    """One page of `stmt`, newest first, keyset-paginated on (created, key): the cursor is
    "<created ISO>|<key>" of the page's last row; one not of this shape gives the first page."""
    if (after := _after(cursor, key_ok)) is not None:
        stmt = stmt.where(tuple_(created, key) < tuple_(*after))
    stmt = stmt.order_by(created.desc(), key.desc()).limit(limit + 1)
    async with sessions() as session:
        rows = list((await session.execute(stmt)).scalars())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], f"{getattr(last, created.key).isoformat()}|{getattr(last, key.key)}"


# --- kickbacks ---------------------------------------------------------------------------------


def decoded_pairs(raw: bytes) -> list[tuple[str, str]]:
    """A stored query string or form body as (name, value) pairs, each percent-decoded to
    bytes first and read as the gateway writes text (UTF-8, else CP932)."""
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append(
            (
                decode_bytes(unquote_to_bytes(name.replace(b"+", b" "))),
                decode_bytes(unquote_to_bytes(value.replace(b"+", b" "))),
            )
        )
    return pairs


async def kickbacks_page(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: str | None,
    before: int | None,
    limit: int,
) -> tuple[list[Kickback], int | None]:
    """Newest first; the next page's `before` (an id), or None on the last page."""
    stmt = select(Kickback).order_by(Kickback.id.desc()).limit(limit + 1)
    if status:
        stmt = stmt.where(Kickback.status == status)
    if before is not None:
        stmt = stmt.where(Kickback.id < before)
    async with sessions() as session:
        rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, rows[-1].id if more and rows else None


async def csp_reports_page(
    sessions: async_sessionmaker[AsyncSession], *, cursor: str | None, limit: int
) -> tuple[list[CspReport], str | None]:
    """The payment pages' CSP violations, the most recently seen first."""
    return await _newest_first(
        sessions, select(CspReport), CspReport.last_seen, CspReport.fingerprint, cursor, limit
    )


async def kickback(sessions: async_sessionmaker[AsyncSession], kickback_id: int) -> Kickback | None:
    async with sessions() as session:
        return await session.get(Kickback, kickback_id)


# --- checkout sessions -------------------------------------------------------------------------


async def sessions_page(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: str | None,
    order_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[CheckoutSession], str | None]:
    """Newest first, keyset pages on (created_at, id)."""
    stmt = select(CheckoutSession)
    if status:
        stmt = stmt.where(CheckoutSession.status == status)
    if order_id:
        stmt = stmt.where(CheckoutSession.order_id == order_id)
    return await _newest_first(
        sessions,
        stmt,
        CheckoutSession.created_at,
        CheckoutSession.id,
        cursor,
        limit,
        key_ok=lambda key: key.startswith("cs_") and len(key) <= 40,
    )


async def session_detail(
    sessions: async_sessionmaker[AsyncSession], cs_id: str
) -> tuple[CheckoutSession | None, list[Payment]]:
    """A checkout session and its payments, oldest first."""
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
        if cs is None:
            return None, []
        stmt = (
            select(Payment)
            .where(Payment.checkout_session_id == cs_id)
            .order_by(Payment.created_at, Payment.id)
        )
        return cs, list((await session.execute(stmt)).scalars())


# --- customers -----------------------------------------------------------------------------------


async def customers_page(
    sessions: async_sessionmaker[AsyncSession],
    *,
    uid: str | None,
    email: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Customer], str | None]:
    """Newest first, keyset pages on (created_at, uid)."""
    stmt = select(Customer)
    if uid:
        stmt = stmt.where(Customer.uid == uid)
    if email:
        stmt = stmt.where(Customer.email == email)
    return await _newest_first(sessions, stmt, Customer.created_at, Customer.uid, cursor, limit)


@dataclass(frozen=True)
class CustomerView:
    customer: Customer
    cards: list[Card]
    events: list[CustomerEvent]


async def customer_detail(
    sessions: async_sessionmaker[AsyncSession], uid: str
) -> CustomerView | None:
    """A customer, every card it had (deleted ones too) and its latest events."""
    async with sessions() as session:
        found = await session.get(Customer, uid)
        if found is None:
            return None
        return CustomerView(
            found,
            await customers.cards_of(session, uid, active_only=False),
            await customers.events_of(session, uid),
        )


# --- billing-robo card registrations -------------------------------------------------------------


async def registrations_page(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: str | None,
    billing_code: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[BillingCardRegistration], str | None]:
    """Newest first, keyset pages on (created_at, id)."""
    row = BillingCardRegistration
    stmt = select(row)
    if status:
        stmt = stmt.where(row.status == status)
    if billing_code:
        stmt = stmt.where(row.billing_code == billing_code)
    return await _newest_first(sessions, stmt, row.created_at, row.id, cursor, limit)
