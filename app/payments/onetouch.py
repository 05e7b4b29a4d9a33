"""One-touch charges: a payment on a stored card (`onetouch.aspx` cmd=4, no 3-D Secure).

Same pattern as checkout: the payment is created 'pending' and committed (with the request's
Idempotency-Key bound to it in that same commit), marked "about to send", the gateway is called
with no transaction open, and its answer is recorded under the payment's row lock."""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.crash import crash_point
from app.customers.models import Customer
from app.customers.service import find_card
from app.db import new_id
from app.errors import FieldError, Unprocessable
from app.fields import Email, ItemCode, OrderId, Phone, Uid, Yen
from app.gateway.base import ChargeResult, OnetouchCharge, PaymentGateway, payment_ref
from app.idempotency import bind
from app.payments import evidence
from app.payments import service as payments
from app.payments.models import Payment
from app.payments.states import Status

log = logging.getLogger(__name__)

Installments = Literal[3, 5, 6, 10, 12, 15, 18, 20, 24]


class OnetouchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Uid = Field(description="the customer's uid")
    card_num: int = Field(ge=0, le=999_999_999, description="the stored card's num")
    job: Literal["AUTH", "CAPTURE"] = Field("CAPTURE", description="AUTH = authorize only")
    amount: Yen | None = Field(None, ge=1, le=99_999_999, description="am, at most 8 digits")
    tax: Yen = Field(0, ge=0, le=9_999_999, description="tx, at most 7 digits")
    shipping: Yen = Field(0, ge=0, le=9_999_999, description="sf, at most 7 digits")
    item_code: ItemCode | None = Field(None, description="a registered product (iid)")
    order_id: OrderId | None = Field(None, description="sent as cod, at most 50 bytes")
    email: Email | None = Field(None, description="updates the customer's e-mail at the gateway")
    phone: Phone | None = Field(None, description="updates the customer's phone at the gateway")
    method: Literal["10", "61", "80"] | None = Field(
        None, description="md: 10 lump sum, 61 installments, 80 revolving"
    )
    installments: Installments | None = Field(None, description="pt, only with method 61")

    @model_validator(mode="after")
    def _rules(self) -> OnetouchCreate:
        if self.item_code is not None:
            if self.amount is not None or self.tax or self.shipping:
                raise ValueError("send either item_code or amount/tax/shipping, not both")
        elif self.amount is None:
            raise ValueError("amount (or item_code) is required")
        if self.method == "61" and self.installments is None:
            raise ValueError("installments is required with method 61")
        if self.method != "61" and self.installments is not None:
            raise ValueError("installments is only allowed with method 61")
        return self


async def charge(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    data: OnetouchCreate,
    *,
    actor: str,
    result_mode: int,
) -> tuple[Payment, ChargeResult | None]:
    uid = data.customer_id
    async with sessions() as session:
        customer = await session.get(Customer, uid)
        if customer is None or customer.status != "active":
            raise Unprocessable(
                f"No customer {uid!r}.",
                code="customer_not_found",
                errors=[FieldError(field="customer_id", message="no such customer")],
            )
        card = await find_card(session, uid, data.card_num)
        if card is None or card.status != "active":
            raise Unprocessable(
                f"Customer {uid!r} has no card {data.card_num}.",
                code="card_not_found",
                errors=[FieldError(field="card_num", message="not a saved card of this customer")],
            )
        key = customer.key
        payment = Payment(
            id=new_id("pay"),
            kind="onetouch",
            status=Status.PENDING,
            job=data.job,
            order_id=data.order_id,
            amount=data.amount or 0,
            tax=data.tax,
            shipping=data.shipping,
            item_code=data.item_code,
            customer_uid=uid,
            card_num=data.card_num,
            result_mode=result_mode,
            created_by=actor,
            check_attempts=0,
            needs_attention=False,
            unsent=True,
        )
        session.add(payment)
        payments.add_event(session, payment, "created", to_status=Status.PENDING, actor=actor)
        await bind(session, "payment", payment.id)
        await session.commit()

    crash_point("onetouch.before_send")
    if not await payments.mark_sending(sessions, payment.id):
        # A retry of the key found it never sent and failed it: this request must not send.
        async with sessions() as session:
            failed = await session.get(Payment, payment.id)
            assert failed is not None
            return failed, None
    result = await gateway.charge_onetouch(
        OnetouchCharge(
            job=data.job,
            customer_id=uid,
            customer_key=key,
            card_seq=data.card_num,
            amount=data.amount,
            tax=None if data.item_code else data.tax,
            shipping=None if data.item_code else data.shipping,
            item_code=data.item_code,
            # Without the merchant's order id, our payment id lets a kickback be matched.
            order_id=data.order_id or payment.id,
            email=data.email,
            phone=data.phone,
            method=data.method,
            installments=data.installments,
            extra=payment_ref(payment.id),
        ),
        ref=payment.id,
    )

    try:
        async with sessions() as session:
            # A product payment's price comes from the gateway's product register: the
            # answer's amounts are recorded by evidence.apply.
            locked = (await evidence.record_answer(session, payment.id, result)).payment
            await session.commit()
    except Exception:
        log.exception("one-touch payment %s: result not recorded", payment.id)
        async with sessions() as session:
            locked = await payments.mark_unrecorded(session, payment.id)
            await session.commit()
            return locked, None
    log.info("one-touch payment %s on %s/%d: %s", locked.id, uid, data.card_num, locked.status)
    return locked, result
