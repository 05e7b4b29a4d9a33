"""The card an rt=0 pay with registration made (gateway_token.aspx with uid): its customer key
and card number arrive only in the kickback, so the kickback keeps them as the rt=1 answer
does (app.kickbacks.service.CardRegistrations; wired by app.main)."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.checkout.service import store_registered_card
from app.customers import service as customers
from app.gateway.base import GatewayEvent, PaymentGateway
from app.hosted.models import CheckoutSession
from app.payments.models import Payment

log = logging.getLogger(__name__)

READ_BACK_AFTER = timedelta(seconds=60)  # CARD_READ_BACK_AFTER_SECONDS


class KickbackCards:
    def __init__(self, *, read_back_after: timedelta = READ_BACK_AFTER) -> None:
        self._read_back_after = read_back_after

    async def read_back(
        self, sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway
    ) -> int:
        return await customers.read_back_cards(
            sessions, gateway, older_than=self._read_back_after, actor="card-read-back"
        )

    async def record(self, session: AsyncSession, payment_id: str, event: GatewayEvent) -> bool:
        found = await _registration(session, payment_id, event)
        if found is None:
            return False
        cs, key, num = found
        await store_registered_card(session, cs.customer_uid or "", key, num, cs)
        log.info(
            "checkout %s: card %s of %s registered by the kickback", cs.id, num, cs.customer_uid
        )
        return True

    async def refresh(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: PaymentGateway,
        payment_id: str,
        event: GatewayEvent,
    ) -> None:
        async with sessions() as session:
            found = await _registration(session, payment_id, event)
        if found is None:
            return
        cs, key, num = found
        await customers.store_card(
            sessions,
            gateway,
            cs.customer_uid or "",
            key,
            num,
            actor=f"checkout:{cs.id}",
            type_="card_registered",
            cs_id=cs.id,
        )


async def _registration(
    session: AsyncSession, payment_id: str, event: GatewayEvent
) -> tuple[CheckoutSession, str, int] | None:
    """The session, key and num when the notice registers the card of a checkout pay that
    sent the session's customer as uid (the combined path: no saved card was charged). A uid
    we did not send is not ours to store."""
    if event.customer_key is None or event.card_seq is None or not event.customer_id:
        return None
    p = await session.get(Payment, payment_id)
    if p is None or p.checkout_session_id is None or p.card_num is not None:
        return None
    cs = await session.get(CheckoutSession, p.checkout_session_id)
    if cs is None or cs.customer_uid != event.customer_id:
        return None
    return cs, event.customer_key, event.card_seq
