"""Customer and card requests and responses, validated against the seed's field limits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.customers.models import Card, Customer, CustomerEvent
from app.events import outbox
from app.fields import EMAIL_OR_PHONE, Email, Phone, Uid, Url, card_fields_in

TOKEN_FIELD = Field(min_length=8, max_length=512, pattern=r"^[A-Za-z0-9+/=_-]+$")


def _no_card_data(data: object) -> object:
    if isinstance(data, dict):
        sent = card_fields_in({k: str(v) for k, v in data.items() if v})
        if sent:
            raise ValueError(
                f"card data ({', '.join(sent)}) must never be sent to this server; "
                "tokenize it in the browser with CPToken.js"
            )
    return data


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    uid: Uid = Field(description="your id for the customer: 1-50 letters or digits (uid)")
    email: Email | None = Field(None, description="at most 100 characters (em)")
    phone: Phone | None = Field(None, description="digits only, at most 20 (pn)")


class CustomerUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=EMAIL_OR_PHONE)

    email: Email | None = None
    phone: Phone | None = None

    @model_validator(mode="after")
    def _something(self) -> CustomerUpdate:
        if self.email is None and self.phone is None:
            raise ValueError("send email and/or phone")
        return self


class CardCreate(BaseModel):
    """A card token made in the browser by CPToken.js (after 3-D Secure with am=tx=sf=0)."""

    model_config = ConfigDict(extra="forbid")

    token: str = TOKEN_FIELD
    token_key: str | None = Field(
        None,
        min_length=8,
        max_length=512,
        pattern=r"^[A-Za-z0-9+/=_-]+$",
        description="SBPS: the tokenKey com_sbps_system_token.js returned with the token "
        "(required with SBPS)",
    )

    _no_card_data = model_validator(mode="before")(_no_card_data)


class CardRegistrationSessionCreate(BaseModel):
    """A page on which the customer adds a card without paying."""

    model_config = ConfigDict(extra="forbid")

    email: Email | None = Field(None, description="for 3-D Secure; default: the customer's")
    phone: Phone | None = Field(None, description="for 3-D Secure; default: the customer's")
    success_url: Url | None = None
    cancel_url: Url | None = None
    expires_in_minutes: int = Field(30, ge=1, le=1440)


class CardOut(BaseModel):
    """Only what the gateway returns: masked number, expiry (YYMM), holder names."""

    num: int
    masked_number: str | None
    expiry: str | None
    first_name: str | None
    last_name: str | None
    status: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Card) -> CardOut:
        return cls(
            num=c.num,
            masked_number=c.masked_number,
            expiry=c.expiry,
            first_name=c.first_name,
            last_name=c.last_name,
            status=c.status,
            created_at=c.created_at,
            updated_at=c.updated_at,
        )


class CardList(BaseModel):
    data: list[CardOut]


class CustomerEventOut(BaseModel):
    type: str
    card_num: int | None
    actor: str | None
    data: dict[str, Any] | None
    created_at: datetime

    @classmethod
    def of(cls, e: CustomerEvent) -> CustomerEventOut:
        return cls(
            type=e.type, card_num=e.card_num, actor=e.actor, data=e.data, created_at=e.created_at
        )


class CustomerOut(BaseModel):
    uid: str
    email: str | None
    phone: str | None
    status: str
    cards: list[CardOut]
    created_at: datetime
    updated_at: datetime
    # False when the gateway could not be asked just now: this is our last known copy.
    refreshed: bool = True
    events: list[CustomerEventOut] | None = None

    @classmethod
    def of(
        cls,
        c: Customer,
        cards: list[Card],
        *,
        refreshed: bool = True,
        events: list[CustomerEvent] | None = None,
    ) -> CustomerOut:
        return cls(
            uid=c.uid,
            email=c.email,
            phone=c.phone,
            status=c.status,
            cards=[CardOut.of(card) for card in cards],
            created_at=c.created_at,
            updated_at=c.updated_at,
            refreshed=refreshed,
            events=[CustomerEventOut.of(e) for e in events] if events is not None else None,
        )


class SyncOut(BaseModel):
    """What a reconciliation found and fixed in our copy."""

    customer: CustomerOut | None
    changes: list[CustomerEventOut]


def _card_event(c: Card) -> dict[str, Any]:
    return {"customer_id": c.customer_uid, **CardOut.of(c).model_dump(mode="json")}


# A card's addition and deletion are told to the shop whichever path makes them.
outbox.register(Card, "customer.card", _card_event, lambda c: f"{c.customer_uid}/{c.num}")
outbox.watch(Card, {"active": "customer.card.added", "deleted": "customer.card.deleted"})
