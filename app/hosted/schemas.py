"""The public JSON of a payment or card-registration page (billing's has its own)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.events import outbox
from app.hosted.models import CheckoutSession, Kind


class CheckoutSessionOut(BaseModel):
    id: str
    url: str
    status: str
    expires_at: datetime
    amount: int
    tax: int
    shipping: int
    total: int
    job: str
    order_id: str | None
    customer_id: str | None
    item_code: str | None
    save_card: bool
    offer_save_card: bool = False
    payment_id: str | None = None
    payment_status: str | None = None
    kind: str = "payment"  # or "card_registration": the page only registers a card
    card_num: int | None = None  # the card a card_registration session registered
    payment_methods: list[str] = ["10"]  # md codes the page offers: 10, 61, 80
    installment_counts: list[int] = []  # pt counts offered with 61
    metadata: dict[str, str] = {}  # the merchant's metadata, sent with the charge

    @classmethod
    def of(
        cls, cs: CheckoutSession, url: str, payment_id: str | None, payment_status: str | None
    ) -> CheckoutSessionOut:
        return cls(
            id=cs.id,
            url=url,
            status=cs.status,
            expires_at=cs.expires_at,
            # A card page has no payment terms: it shows the zero charge it always showed, and
            # a customer's card page says it saves the card.
            amount=cs.amount or 0,
            tax=cs.tax or 0,
            shipping=cs.shipping or 0,
            total=cs.total,
            job=cs.job or "AUTH",
            order_id=cs.order_id,
            customer_id=cs.customer_uid,
            item_code=cs.item_code,
            save_card=cs.save_card
            if cs.save_card is not None
            else cs.kind == Kind.CARD_REGISTRATION,
            offer_save_card=bool(cs.offer_save_card),
            payment_id=payment_id,
            payment_status=payment_status,
            kind=cs.kind,
            card_num=cs.card_num,
            payment_methods=cs.payment_methods or ["10"],
            installment_counts=cs.installment_counts or [],
            metadata=cs.metadata_ or {},
        )


def _event_data(cs: CheckoutSession) -> dict[str, Any]:
    # No URL: events are rendered without a request (the shop has it from the creation).
    shown = CheckoutSessionOut.of(cs, "", None, None).model_dump(mode="json")
    del shown["url"]
    return shown


outbox.register(CheckoutSession, "checkout.session", _event_data, lambda cs: cs.id)
