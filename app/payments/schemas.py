"""What the API shows of a payment."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.carddata import NoCardData
from app.fields import Email, Yen
from app.gateway.audit import GatewayCallLog
from app.payments.models import Payment, PaymentEvent


class ContentOut(BaseModel):
    """What a product-registered payment issues for the shopper (id/ps, seed 000 p.13)."""

    id: str | None = Field(description="content ID (the gateway's id)")
    password: str | None = Field(description="content password (the gateway's ps)")


class ShopperPaymentOut(BaseModel):
    """A payment as the shopper's browser sees it (the JSON pay): no gid or god. gids are
    sequential, and one shown to a browser is a ready pointer for forged kickbacks; the
    merchant and ops APIs (PaymentOut) keep them."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: str
    job: str
    checkout_session_id: str | None
    order_id: str | None
    amount: int
    tax: int
    shipping: int
    total: int
    item_code: str | None
    content: ContentOut | None = Field(
        None, description="a product payment's issued content ID/password, once it succeeded"
    )
    customer_id: str | None
    card_num: int | None
    ap: str | None
    error_code: str | None
    error_message: str | None
    reauth_of: str | None
    needs_attention: bool
    three_ds_url: str | None = Field(
        None,
        description="while pending at 3-D Secure (SBPS): where the shopper's browser must go "
        "now; it comes back to the checkout's result page",
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Payment) -> Self:
        fields = {
            "id": p.id,
            "kind": p.kind,
            "status": p.status,
            "job": p.job,
            "checkout_session_id": p.checkout_session_id,
            "order_id": p.order_id,
            "amount": p.amount,
            "tax": p.tax,
            "shipping": p.shipping,
            "total": p.total,
            "item_code": p.item_code,
            "content": (
                ContentOut(id=p.content_id, password=p.content_password)
                if p.content_id or p.content_password
                else None
            ),
            "customer_id": p.customer_uid,
            "card_num": p.card_num,
            "gid": p.gid,
            "god": p.god,
            "cod": p.cod,
            "ap": p.ap,
            "error_code": p.error_code,
            "error_message": p.error_message,
            "reauth_of": p.reauth_of_id,
            "needs_attention": p.needs_attention,
            "three_ds_url": p.three_ds_url,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "metadata": p.metadata_ or {},
        }
        return cls(**{k: v for k, v in fields.items() if k in cls.model_fields})


class PaymentOut(ShopperPaymentOut):
    """A payment as the merchant and ops APIs show it, with the gateway's references."""

    gid: int | None
    god: str | None
    cod: str = Field(description="what was sent as the gateway's cod (the order id, or ours)")
    metadata: dict[str, str] = Field(
        default_factory=dict, description="the merchant's metadata, as sent to the gateway"
    )


class PaymentEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    type: str
    from_status: str | None
    to_status: str | None
    actor: str | None
    reason: str | None
    data: dict[str, Any] | None
    request_id: str | None
    created_at: datetime


class GatewayCallOut(BaseModel):
    """One gateway call: the request as sent (tokens and card data masked), the raw answer."""

    model_config = ConfigDict(from_attributes=True)

    operation: str
    endpoint: str
    request: dict[str, Any]
    http_status: int | None
    response_body: str | None
    latency_ms: float
    outcome: str
    error_code: str | None
    request_id: str | None
    started_at: datetime


class PaymentDetail(PaymentOut):
    events: list[PaymentEventOut]
    gateway_calls: list[GatewayCallOut]

    @classmethod
    def build(
        cls, p: Payment, events: list[PaymentEvent], calls: list[GatewayCallLog]
    ) -> PaymentDetail:
        return cls(
            **PaymentOut.of(p).model_dump(),
            events=[PaymentEventOut.model_validate(e) for e in events],
            gateway_calls=[GatewayCallOut.model_validate(c) for c in calls],
        )


class PaymentPage(BaseModel):
    data: list[PaymentOut]
    next_cursor: str | None


def _reauth_phone(v: str) -> str:
    if not re.fullmatch(r"\d{1,15}", v):
        raise ValueError("must be 1-15 digits, no hyphens (re_auth's pn)")
    return v


class ReauthorizeRequest(BaseModel):
    """The corrected amounts (seed 002 re_auth: am, tx, sf required; em/pn optional)."""

    model_config = ConfigDict(extra="forbid")

    amount: Yen = Field(ge=1, le=99_999_999, description="商品金額 (am), yen, at most 8 digits")
    tax: Yen = Field(0, ge=0, le=9_999_999, description="税額 (tx), at most 7 digits")
    shipping: Yen = Field(0, ge=0, le=9_999_999, description="送料 (sf), at most 7 digits")
    email: Email | None = None
    phone: Annotated[str, NoCardData, AfterValidator(_reauth_phone)] | None = None


class ResolveRequest(BaseModel):
    """A person's decision on a payment the gateway's records could not settle."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["authorized", "captured", "canceled", "failed"]
    reason: Annotated[str, NoCardData] = Field(
        min_length=3, max_length=500, description="why; kept in the trail"
    )
    gid: int | None = Field(None, ge=1, le=2**62, description="the gateway's payment number")
