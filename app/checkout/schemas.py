"""Checkout requests and responses, validated against the gateway's field limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.fields import (
    CARD_FIELDS,
    EMAIL_OR_PHONE,
    Email,
    InstallmentCount,
    ItemCode,
    Metadata,
    OrderId,
    PayMethod,
    Phone,
    Uid,
    Url,
    Yen,
    pay_method_problem,
    product_job_validator,
)


def _lump_sum_only() -> list[PayMethod]:
    return ["10"]


class CheckoutSessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=EMAIL_OR_PHONE)

    amount: Yen = Field(ge=1, le=99_999_999, description="商品金額 (am), yen, at most 8 digits")
    tax: Yen = Field(0, ge=0, le=9_999_999, description="税額 (tx), at most 7 digits")
    shipping: Yen = Field(0, ge=0, le=9_999_999, description="送料 (sf), at most 7 digits")
    job: Literal["AUTH", "CAPTURE"] = Field("CAPTURE", description="AUTH = authorize only")
    order_id: OrderId | None = Field(None, description="sent as cod, at most 50 bytes")
    customer_id: Uid | None = Field(None, description="gateway uid of the shopper")
    email: Email | None = None
    phone: Phone | None = None
    save_card: bool = Field(False, description="register the card on customer_id while paying")
    offer_save_card: bool = Field(
        False,
        description="let the shopper choose: the page shows a 'save this card' box "
        "(unticked); needs customer_id",
    )
    item_code: ItemCode | None = Field(None, description="product-registered payment (iid)")
    success_url: Url | None = None
    cancel_url: Url | None = None
    expires_in_minutes: int = Field(30, ge=1, le=1440)
    payment_methods: list[PayMethod] = Field(
        default_factory=_lump_sum_only,
        min_length=1,
        max_length=3,
        description="what the page offers the shopper (md): 10 lump sum, 61 installments "
        "(with installment_counts), 80 revolving; 61 and 80 need the card companies' review "
        "of the shop (seed 000 p.9)",
    )
    installment_counts: list[InstallmentCount] | None = Field(
        None, min_length=1, max_length=9, description="the counts (pt) offered with 61"
    )
    metadata: Metadata | None = Field(None, description="merchant metadata (free parameters)")

    # job is declared (so validated) before item_code: the rule sees both.
    _product_job = field_validator("item_code")(product_job_validator)

    @model_validator(mode="after")
    def _rules(self) -> CheckoutSessionCreate:
        if len(set(self.payment_methods)) != len(self.payment_methods):
            raise ValueError("payment_methods must not repeat a method")
        if ("61" in self.payment_methods) != bool(self.installment_counts):
            raise ValueError("installment_counts is required with method 61, and only with it")
        if not self.email and not self.phone:
            raise ValueError("email or phone is required (3-D Secure needs at least one)")
        if self.save_card and not self.customer_id:
            raise ValueError("save_card needs customer_id")
        if self.offer_save_card and not self.customer_id:
            raise ValueError("offer_save_card needs customer_id")
        return self


class PayRequest(BaseModel):
    """Exactly one of `token` (from CPToken.js, or com_sbps_system_token.js with its
    `token_key`) or `card_num` (a saved card)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["token"]}, {"required": ["card_num"]}]},
    )

    token: str | None = Field(None, min_length=8, max_length=512, pattern=r"^[A-Za-z0-9+/=_-]+$")
    token_key: str | None = Field(
        None,
        min_length=8,
        max_length=512,
        pattern=r"^[A-Za-z0-9+/=_-]+$",
        description="SBPS: the tokenKey com_sbps_system_token.js returned with the token "
        "(required with a token when the gateway is SBPS)",
    )
    tds_info_token: str | None = Field(
        None,
        min_length=8,
        max_length=1024,
        pattern=r"^[A-Za-z0-9+/=_-]+$",
        description="SBPS: the 3-D Secure info token com_sbps_system_tds2infotoken.js returned "
        "(with its key; required with a token unless SBPS_THREE_DS is off)",
    )
    tds_info_token_key: str | None = Field(
        None,
        min_length=8,
        max_length=512,
        pattern=r"^[A-Za-z0-9+/=_-]+$",
        description="SBPS: the tokenKey that came with tds_info_token",
    )
    card_num: int | None = Field(
        None, ge=0, le=9, description="a saved card's num (one digit: seed 000 p.12)"
    )
    save_card: bool = Field(
        False, description="the shopper ticked 'save this card' (sessions with offer_save_card)"
    )
    method: PayMethod | None = Field(
        None, description="the payment method the shopper chose of the session's (md); 10 if none"
    )
    installments: InstallmentCount | None = Field(None, description="pt, only with method 61")

    @model_validator(mode="before")
    @classmethod
    def _no_card_data(cls, data: object) -> object:
        if isinstance(data, dict):
            sent = [k for k in CARD_FIELDS if k in data]
            if sent:
                raise ValueError(
                    f"card data ({', '.join(sent)}) must never be sent to this server; "
                    "tokenize it in the browser with CPToken.js"
                )
        return data

    @model_validator(mode="after")
    def _one_of(self) -> PayRequest:
        if (self.token is None) == (self.card_num is None):
            raise ValueError("send exactly one of token or card_num")
        problem = pay_method_problem(self.method, self.installments)
        if problem:
            raise ValueError(problem)
        return self
