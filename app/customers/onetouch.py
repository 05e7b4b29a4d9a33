"""One-touch charges: a payment on a stored card (`onetouch.aspx` cmd=4, no 3-D Secure).

Same pattern as checkout: the payment is created 'pending' and committed (with the request's
Idempotency-Key bound to it in that same commit); then payments.calls.send_and_record marks it
"about to send", calls the gateway with no transaction open and records the answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers.models import Customer
from app.customers.service import find_card
from app.db import new_id
from app.errors import FieldError, Unprocessable
from app.fields import (
    Email,
    InstallmentCount,
    ItemCode,
    Metadata,
    OrderId,
    PayMethod,
    Phone,
    Uid,
    Yen,
    pay_method_problem,
    product_job_validator,
)
from app.gateway.base import ChargeResult, OnetouchCharge, PaymentGateway, payment_ref
from app.idempotency import bind
from app.payments import calls
from app.payments import service as payments
from app.payments.models import Payment
from app.payments.rows import KICKBACK_EXPECTED
from app.payments.states import Status

log = logging.getLogger(__name__)


class OnetouchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Uid = Field(description="the customer's uid")
    card_num: int = Field(
        ge=0, le=9, description="the stored card's num (one digit: seed 000 p.12, 半角数字(1))"
    )
    job: Literal["AUTH", "CAPTURE"] = Field("CAPTURE", description="AUTH = authorize only")
    amount: Yen | None = Field(None, ge=1, le=99_999_999, description="am, at most 8 digits")
    tax: Yen = Field(0, ge=0, le=9_999_999, description="tx, at most 7 digits")
    shipping: Yen = Field(0, ge=0, le=9_999_999, description="sf, at most 7 digits")
    item_code: ItemCode | None = Field(None, description="a registered product (iid)")
    order_id: OrderId | None = Field(None, description="sent as cod, at most 50 bytes")
    email: Email | None = Field(None, description="updates the customer's e-mail at the gateway")
    phone: Phone | None = Field(None, description="updates the customer's phone at the gateway")
    method: PayMethod | None = Field(
        None, description="md: 10 lump sum, 61 installments, 80 revolving"
    )
    installments: InstallmentCount | None = Field(None, description="pt, only with method 61")
    metadata: Metadata | None = Field(None, description="merchant metadata (free parameters)")

    # job is declared (so validated) before item_code: the rule sees both.
    _product_job = field_validator("item_code")(product_job_validator)

    @model_validator(mode="after")
    def _rules(self) -> OnetouchCreate:
        if self.item_code is not None:
            if self.amount is not None or self.tax or self.shipping:
                raise ValueError("send either item_code or amount/tax/shipping, not both")
        elif self.amount is None:
            raise ValueError("amount (or item_code) is required")
        problem = pay_method_problem(self.method, self.installments)
        if problem:
            raise ValueError(problem)
        return self


async def charge(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    data: OnetouchCreate,
    *,
    actor: str,
    result_mode: int,
    kickback_expected: timedelta = KICKBACK_EXPECTED,
) -> tuple[Payment, ChargeResult | None]:
    async with sessions() as session:
        key = await _stored_card_key(session, data)
        payment = _new_payment(data, actor=actor, result_mode=result_mode)
        session.add(payment)
        payments.add_event(session, payment, "created", to_status=Status.PENDING, actor=actor)
        await bind(session, "payment", payment.id)
        await session.commit()

    def send() -> Awaitable[ChargeResult]:
        return gateway.charge_onetouch(_request(data, key, payment.id), ref=payment.id)

    sent = await calls.send_and_record(
        sessions,
        payment.id,
        send,
        crash_at="onetouch.before_send",
        kickback_expected=kickback_expected,
    )
    p = sent.payment
    log.info("one-touch payment %s on %s/%d: %s", p.id, data.customer_id, data.card_num, p.status)
    # Not sent (a retry of the key found it never sent and failed it), or not recorded.
    return p, sent.result if sent.recorded else None


async def _stored_card_key(session: AsyncSession, data: OnetouchCreate) -> str:
    """The customer's gateway key, if the customer and the card are ours and active."""
    uid = data.customer_id
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
    return customer.key


def _new_payment(data: OnetouchCreate, *, actor: str, result_mode: int) -> Payment:
    payment_id = new_id("pay")
    return Payment(
        id=payment_id,
        kind="onetouch",
        status=Status.PENDING,
        job=data.job,
        order_id=data.order_id,
        cod=payments.cod_for(data.order_id, payment_id),
        amount=data.amount or 0,
        tax=data.tax,
        shipping=data.shipping,
        item_code=data.item_code,
        customer_uid=data.customer_id,
        card_num=data.card_num,
        result_mode=result_mode,
        created_by=actor,
        check_attempts=0,
        needs_attention=False,
        unsent=True,
        metadata_=data.metadata,
    )


def _request(data: OnetouchCreate, key: str, payment_id: str) -> OnetouchCharge:
    return OnetouchCharge(
        job=data.job,
        customer_id=data.customer_id,
        customer_key=key,
        card_seq=data.card_num,
        amount=data.amount,
        tax=None if data.item_code else data.tax,
        shipping=None if data.item_code else data.shipping,
        item_code=data.item_code,
        # Without the merchant's order id, our payment id lets a kickback be matched.
        order_id=payments.cod_for(data.order_id, payment_id),
        email=data.email,
        phone=data.phone,
        method=data.method,
        installments=data.installments,
        extra={**(data.metadata or {}), **payment_ref(payment_id)},
    )
