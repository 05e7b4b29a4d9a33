"""Card-registration pages: a checkout session of kind 'card_registration' whose page only
tokenizes a card (3-D Secure with am=tx=sf=0) and registers it on the customer, without paying.

The session row is the claim: 'processing' while one registration runs, so a double submit
never registers two cards; back to 'open' when it failed, 'completed' with `card_num` after."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import velocity
from app.customers import service
from app.customers.models import Card, Customer
from app.customers.schemas import CardRegistrationSessionCreate
from app.errors import Conflict, FieldError, Unprocessable
from app.gateway.base import ErrorKind, Outcome, PaymentGateway
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession, Kind

log = logging.getLogger(__name__)


async def create_session(
    sessions: async_sessionmaker[AsyncSession],
    uid: str,
    data: CardRegistrationSessionCreate,
    *,
    created_by: str,
) -> CheckoutSession:
    async with sessions() as session:
        customer = await session.get(Customer, uid)
        if customer is not None and customer.status != "active":
            raise Conflict(f"Customer {uid!r} was deleted.", code="customer_deleted")
        email = data.email or (customer.email if customer else None)
        phone = data.phone or (customer.phone if customer else None)
        if not email and not phone:
            raise Unprocessable(
                "3-D Secure needs the customer's e-mail or phone.",
                errors=[FieldError(field="email", message="email or phone is required")],
            )
        cs = await hosted.open_page(
            session,
            Kind.CARD_REGISTRATION,
            expires_in_minutes=data.expires_in_minutes,
            email=email,
            phone=phone,
            success_url=data.success_url,
            cancel_url=data.cancel_url,
            customer_uid=uid,
        )
        await session.commit()
    log.info("card registration session %s for %s created by %s", cs.id, uid, created_by)
    return cs


async def register(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cs_id: str,
    token: str,
    *,
    client_ip: str | None = None,
    limits: velocity.Limits | None = None,
    token_key: str | None = None,
) -> tuple[CheckoutSession, Card | None]:
    """Registers the card of `token` on the session's customer (the card row is None if our
    copy could not be written); raises AppError otherwise (the session is open again).
    `client_ip`, `limits`: the card-testing limits, as for pays."""
    cs, reservation = await _claim_page(sessions, cs_id, limits or velocity.Limits(), client_ip)
    uid = cs.customer_uid
    assert uid is not None
    result = None
    try:
        key = await _customer_key(sessions, gateway, cs)
        result = await gateway.register_card(uid, key, token, ref=uid, token_key=token_key)
        await velocity.settle(sessions, reservation, result)
        service.raise_for(result, uid=uid)
        assert result.card_seq is not None
    except BaseException:
        if result is None:  # no answer to count: the attempt is no longer in flight
            await velocity.settle(sessions, reservation, None)
        await _reopen(sessions, cs_id)
        raise
    # The card is registered at the gateway from here on: the session completes even if our
    # copy cannot be written now (the customer's next sync adds the card).
    card: Card | None = None
    try:
        card = await service.store_card(
            sessions,
            gateway,
            uid,
            key,
            result.card_seq,
            actor=f"card-page:{cs_id}",
            type_="card_registered",
            cs_id=cs_id,
        )
    except Exception:
        log.exception("card registration session %s: card %d not stored", cs_id, result.card_seq)
    row = await _complete(sessions, cs_id, result.card_seq)
    log.info("card registration session %s: card %d registered on %s", cs_id, result.card_seq, uid)
    return row, card


async def _claim_page(
    sessions: async_sessionmaker[AsyncSession],
    cs_id: str,
    limits: velocity.Limits,
    client_ip: str | None,
) -> tuple[CheckoutSession, velocity.Reservation]:
    """The page, now 'processing' (the claim), and the attempt reserved against the
    card-testing limits; raises when the page is not open or over a limit."""
    async with sessions() as session:
        cs = await hosted.lock_card_page(
            session,
            cs_id,
            Kind.CARD_REGISTRATION,
            per_session=limits.per_session,
            wrong_kind=Unprocessable(
                "This checkout session is a payment, not a card registration."
            ),
        )
        reservation = await velocity.reserve(
            session, limits, customer=cs.customer_uid, ip=client_ip
        )
        hosted.claim(cs)
        await session.commit()
    return cs, reservation


async def _reopen(sessions: async_sessionmaker[AsyncSession], cs_id: str) -> None:
    """The registration failed: the page is open again for another try."""
    await hosted.release(sessions, cs_id, completed=False)


async def _complete(
    sessions: async_sessionmaker[AsyncSession], cs_id: str, num: int
) -> CheckoutSession:
    async with sessions() as session:
        row = await session.get(CheckoutSession, cs_id, with_for_update=True)
        assert row is not None
        row.status, row.card_num = "completed", num
        await session.commit()
    return row


async def _customer_key(
    sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, cs: CheckoutSession
) -> str:
    """The gateway key of the session's customer, registering the user (cmd 0) when we have
    no copy; a uid the gateway already has (ER652) is imported (cmd 3) instead."""
    uid = cs.customer_uid
    assert uid is not None
    async with sessions() as session:
        customer = await session.get(Customer, uid)
        if customer is not None:
            if customer.status != "active":
                raise Conflict(f"Customer {uid!r} was deleted.", code="customer_deleted")
            return customer.key
    result = await gateway.register_user(uid, cs.email, cs.phone, ref=uid)
    if result.outcome == Outcome.SUCCESS and result.customer_key:
        async with sessions() as session:
            existing = await service.lock_customer(session, uid)
            if existing is None:
                session.add(
                    Customer(uid=uid, key=result.customer_key, email=cs.email, phone=cs.phone)
                )
                service.add_event(
                    session,
                    uid,
                    "customer_created",
                    actor=f"card-page:{cs.id}",
                    data={"email": cs.email, "phone": cs.phone},
                )
            await session.commit()
        return result.customer_key
    if service.error_kind(result) == ErrorKind.CUSTOMER_EXISTS:
        imported = await service.import_customer(sessions, gateway, uid, actor=f"card-page:{cs.id}")
        if imported is not None:
            return imported.key
    service.raise_for(result, uid=uid)
    raise AssertionError("unreachable")


async def page_view(
    sessions: async_sessionmaker[AsyncSession], cs_id: str
) -> tuple[CheckoutSession | None, list[Card]]:
    """A card page and the active cards its customer has (shown with delete buttons)."""
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
        uid = cs.customer_uid if cs is not None else None
        return cs, await service.cards_of(session, uid) if uid else []
