"""What the checkout pages and the merchant API read, as service functions: the routers never
query. Each takes the sessionmaker and runs its own short, read-only transactions; `load`
may also ask the gateway (read-only) about a customer, with no transaction open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout import service
from app.customers import service as customers
from app.customers.models import Card, Customer
from app.errors import AppError
from app.gateway.base import PaymentGateway
from app.hosted.models import CheckoutSession
from app.hosted.service import ensure_payable
from app.payments.models import Payment
from app.payments.service import never_sent


@dataclass(frozen=True)
class PaymentPage:
    """The payment page of `cs`: `closed` when it can no longer be paid (cs None: no such
    page), `live` when a payment of it went out (its result is shown), else the form."""

    cs: CheckoutSession | None
    closed: AppError | None = None
    live: Payment | None = None
    # A new card is registered before it is charged (3-D Secure then runs with am=tx=sf=0).
    register_first: bool = False
    # With the "save this card" box (offer_save_card): whether ticking it registers first.
    save_registers_first: bool | None = None
    saved_cards: tuple[Card, ...] = ()


async def load(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cs_id: str,
    *,
    pay_claim: timedelta,
) -> PaymentPage:
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
        if cs is not None and cs.status == "completed":
            # Reopening a paid page's link shows its receipt, not "already paid".
            paid = await service.live_payment(session, cs.id)
            if paid is not None:
                return PaymentPage(cs, live=paid)
        try:
            ensure_payable(cs)
        except AppError as exc:
            return PaymentPage(cs, closed=exc)
        assert cs is not None
        live = await service.live_payment(session, cs.id)
        # A payment whose pay stopped before sending does not block the page: paying fails it.
        if live is not None and not never_sent(live, claim=pay_claim):
            return PaymentPage(cs, live=live)
        uid = cs.customer_uid
        may_save = cs.save_card or cs.offer_save_card
        unknown = may_save and uid is not None and await session.get(Customer, uid) is None
    if unknown and uid is not None:
        # The gateway may know this uid although we do not (ER652 on the combined path): ask
        # it (read-only, with our transaction closed) so the card gets registered on the
        # existing user instead.
        await customers.import_customer(sessions, gateway, uid, actor=f"checkout:{cs_id}")
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
        assert cs is not None
        save_first = (
            await service.registers_first(session, cs, requested=True)
            if cs.offer_save_card
            else None
        )
        return PaymentPage(
            cs,
            register_first=await service.registers_first(session, cs),
            save_registers_first=save_first,
            saved_cards=tuple(await service.saved_cards(session, cs)),
        )


async def with_payment(
    sessions: async_sessionmaker[AsyncSession], cs_id: str, payment_id: str | None = None
) -> tuple[CheckoutSession | None, Payment | None]:
    """The page and its payment `payment_id` (default: its last payment)."""
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
        if cs is None:
            return None, None
        if payment_id is not None:
            return cs, await session.get(Payment, payment_id)
        return cs, await service.last_payment(session, cs.id)
