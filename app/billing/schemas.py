"""Billing robo requests and responses, validated against seed 001's field limits."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from app.billing.models import BillingCardRegistration, BillingCardSession
from app.carddata import NoCardData
from app.errors import FieldError
from app.events import outbox
from app.fields import Email, Url, card_fields_in
from app.hosted.models import CheckoutSession

_CODE = re.compile(r"[\x21-\x7e]{1,20}")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{8,512}")


def _code(v: str) -> str:
    if not _CODE.fullmatch(v):
        raise ValueError("must be 1-20 ASCII letters, digits or symbols (no spaces)")
    return v


def _tel(v: object) -> object:
    # Billing robo compares the phone digit for digit and 3-D Secure wants no hyphens:
    # "03-1234-5678" is taken as "0312345678".
    return re.sub(r"[\s-]", "", v) if isinstance(v, str) else v


def _tel_digits(v: str) -> str:
    if not re.fullmatch(r"\d{1,15}", v):
        raise ValueError("must be 1-15 digits (hyphens and spaces are removed)")
    return v


def _token(v: str) -> str:
    if not _TOKEN.fullmatch(v):
        raise ValueError("must be the token made by CPToken.js (8-512 characters)")
    return v


BillingCode = Annotated[str, NoCardData, AfterValidator(_code)]
MethodCode = Annotated[str, NoCardData, AfterValidator(_code)]
Tel = Annotated[str, BeforeValidator(_tel), NoCardData, AfterValidator(_tel_digits)]
Token = Annotated[str, AfterValidator(_token)]
MethodNumber = Annotated[int, Field(ge=1, le=10**18 - 1)]


def _no_card_data(data: object) -> object:
    if isinstance(data, dict):
        sent = card_fields_in({str(k): str(v) for k, v in data.items() if v})
        if sent:
            raise ValueError(
                f"card data ({', '.join(sent)}) must never be sent to this server; "
                "tokenize it in the browser with CPToken.js"
            )
    return data


class _Target(BaseModel):
    """The payer and exactly one of its payment method's number or code."""

    billing_code: BillingCode = Field(description="the payer's 請求先コード (<= 20)")
    billing_payment_method_number: MethodNumber | None = Field(
        None, description="決済情報番号 (<= 18 digits); or billing_payment_method_code"
    )
    billing_payment_method_code: MethodCode | None = Field(
        None, description="決済情報コード (<= 20); or billing_payment_method_number"
    )

    def target_errors(self) -> list[FieldError]:
        """Both is billing robo's 3404 and neither has no code of its own: both are refused
        here, before any call, naming the two fields."""
        given = (self.billing_payment_method_number, self.billing_payment_method_code)
        if given.count(None) == 1:
            return []
        message = (
            "send exactly one of billing_payment_method_number and billing_payment_method_code"
        )
        return [
            FieldError(field="billing_payment_method_number", message=message),
            FieldError(field="billing_payment_method_code", message=message),
        ]


class BillingCardCreate(_Target):
    """Register the card of a token on a payer (credit_card_token). The token comes from
    CPToken.js after 3-D Secure with am=tx=sf=0 and the payer's registered e-mail/phone."""

    model_config = ConfigDict(extra="forbid")

    token: Token
    email: Email | None = Field(None, description="must equal the payer's registered e-mail")
    tel: Tel | None = Field(None, description="must equal the payer's registered phone")

    _no_card_data = model_validator(mode="before")(_no_card_data)


class BillingCardSessionCreate(_Target):
    """A page on which the payer enters a card that is registered on its payment method."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = Field(None, description="the payer's registered e-mail (3-D Secure)")
    tel: Tel | None = Field(None, description="the payer's registered phone (3-D Secure)")
    success_url: Url | None = None
    cancel_url: Url | None = None
    expires_in_minutes: int = Field(30, ge=1, le=1440)

    def contact_errors(self) -> list[FieldError]:
        if self.email or self.tel:
            return []
        message = "3-D Secure needs the payer's registered email or tel"
        return [
            FieldError(field="email", message=message),
            FieldError(field="tel", message=message),
        ]


class BillingCardRegistrationOut(BaseModel):
    id: str
    status: str  # processing | succeeded | failed | unknown
    billing_code: str
    billing_payment_method_number: int | None
    billing_payment_method_code: str | None
    session_id: str | None
    error_code: str | None
    attempts: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: BillingCardRegistration) -> BillingCardRegistrationOut:
        return cls(
            id=r.id,
            status=r.status,
            billing_code=r.billing_code,
            billing_payment_method_number=r.payment_method_number,
            billing_payment_method_code=r.payment_method_code,
            session_id=r.session_id,
            error_code=r.error_code,
            attempts=r.attempts,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


class BillingCardSessionOut(BaseModel):
    id: str
    url: str
    kind: str
    status: str  # open | processing | completed | expired
    expires_at: datetime
    billing_code: str
    billing_payment_method_number: int | None
    billing_payment_method_code: str | None
    email: str | None
    tel: str | None
    registration: BillingCardRegistrationOut | None = None

    @classmethod
    def of(
        cls,
        cs: CheckoutSession,
        target: BillingCardSession,
        url: str,
        registration: BillingCardRegistration | None,
    ) -> BillingCardSessionOut:
        return cls(
            id=cs.id,
            url=url,
            kind=cs.kind,
            status=cs.status,
            expires_at=cs.expires_at,
            billing_code=target.billing_code,
            billing_payment_method_number=target.payment_method_number,
            billing_payment_method_code=target.payment_method_code,
            email=cs.email,
            tel=cs.phone,
            registration=BillingCardRegistrationOut.of(registration) if registration else None,
        )


def _registration_event(r: BillingCardRegistration) -> dict[str, Any]:
    return BillingCardRegistrationOut.of(r).model_dump(mode="json")


outbox.register(
    BillingCardRegistration, "billing.card_registration", _registration_event, lambda r: r.id
)
outbox.watch(
    BillingCardRegistration,
    {"succeeded": "billing.card.registered", "failed": "billing.card.failed"},
)
