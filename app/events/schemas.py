"""What the API (and a delivery's body) shows of events and webhook endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.carddata import NoCardData
from app.events.models import DeliveryAttempt, Event, EventDelivery, WebhookEndpoint
from app.events.outbox import EVENT_TYPES, EventType
from app.fields import Url


class EventOut(BaseModel):
    """An event, as listed and as POSTed to an endpoint (the body is exactly this)."""

    id: str = Field(description="evt_...: the same in every delivery; dedupe on it")
    type: EventType
    object_type: str = Field(
        description="payment, checkout.session, customer.card, billing.card, page.script"
    )
    object_id: str
    created_at: datetime
    data: dict[str, Any] = Field(description="the object as it was when the change committed")

    @classmethod
    def of(cls, e: Event) -> Self:
        return cls(
            id=e.id,
            type=e.type,
            object_type=e.object_type,
            object_id=e.object_id,
            created_at=e.created_at,
            data=e.data,
        )


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    http_status: int | None = Field(description="the endpoint's answer; null when none came")
    error: str | None = Field(description="why no answer came (timeout, refused, address)")
    latency_ms: int
    response_excerpt: str | None = Field(description="the first bytes of the answer")


class DeliveryOut(BaseModel):
    endpoint_id: str
    status: Literal["pending", "delivered", "failed", "canceled"]
    attempts: int
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    history: list[AttemptOut]

    @classmethod
    def of(cls, d: EventDelivery, history: list[DeliveryAttempt]) -> Self:
        return cls(
            endpoint_id=d.endpoint_id,
            status=d.status,
            attempts=d.attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            delivered_at=d.delivered_at,
            history=[AttemptOut.model_validate(a) for a in history],
        )


class EventDetailOut(EventOut):
    deliveries: list[DeliveryOut]


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")


def _types(v: list[str]) -> list[str]:
    if len(set(v)) != len(v):
        raise ValueError("lists a type twice")
    return v


EventTypes = Annotated[
    list[EventType],
    AfterValidator(_types),
    Field(max_length=len(EVENT_TYPES), description="the types sent; empty or omitted = all"),
]
Description = Annotated[str, NoCardData, Field(max_length=200)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="https:// (http://127.0.0.1 allowed in sandbox)")
    event_types: EventTypes = []
    description: Description | None = None
    enabled: bool = True


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    enabled: bool | None = None


class RollSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_hours: float = Field(
        24, ge=0, le=168, description="how long the old secret still signs (a second v1)"
    )


class EndpointOut(BaseModel):
    id: str
    url: str
    event_types: list[EventType]
    description: str | None
    enabled: bool
    failing_since: datetime | None = Field(
        description="set when a delivery to it was given up on; cleared by the next success"
    )
    previous_secret_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, w: WebhookEndpoint) -> Self:
        return cls(
            id=w.id,
            url=w.url,
            event_types=w.event_types,
            description=w.description,
            enabled=w.enabled,
            failing_since=w.failing_since,
            previous_secret_expires_at=w.previous_secret_expires_at if w.previous_secret else None,
            created_at=w.created_at,
            updated_at=w.updated_at,
        )


class EndpointWithSecret(EndpointOut):
    secret: str = Field(description="whsec_...: shown only now; keep it to verify signatures")


class EndpointList(BaseModel):
    data: list[EndpointOut]


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(
        None, pattern=r"^we_[0-9a-f]{32}$", description="only this endpoint (default: all)"
    )


class RedeliverOut(BaseModel):
    event_id: str
    deliveries: int = Field(description="deliveries queued again (one per endpoint)")
