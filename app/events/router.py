"""Merchant API: webhook endpoints, and the record of events with their deliveries."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from app.auth import MerchantDep
from app.deps import SessionFactoryDep, SettingsDep
from app.errors import Problem, Unprocessable
from app.events import service
from app.events.outbox import EventType
from app.events.schemas import (
    EndpointCreate,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
    EndpointWithSecret,
    EventDetailOut,
    EventOut,
    EventPage,
    RedeliverIn,
    RedeliverOut,
    RollSecret,
)
from app.events.secrets import SecretBox

endpoints = APIRouter(prefix="/v1/webhook-endpoints", tags=["webhooks"])
events = APIRouter(prefix="/v1/events", tags=["events"])

EndpointId = Annotated[str, Path(pattern=r"^we_[0-9a-f]{32}$", description="we_...")]
EventId = Annotated[str, Path(pattern=r"^evt_[0-9a-f]{32}$", description="evt_...")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 422, 503)
}


async def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.webhook_box
    return box


BoxDep = Annotated[SecretBox, Depends(_box)]


def _rules(settings: SettingsDep) -> service.UrlRules:
    return service.UrlRules(
        live=settings.gateway_mode == "live", allow_loopback=settings.webhook_loopback_allowed
    )


def _with_secret(row: Any, secret: str) -> EndpointWithSecret:
    return EndpointWithSecret(**EndpointOut.of(row).model_dump(), secret=secret)


@endpoints.post(
    "",
    status_code=201,
    response_model=EndpointWithSecret,
    responses=_ERRORS,
    summary="Add an endpoint",
)
async def create_endpoint(
    body: EndpointCreate,
    _: MerchantDep,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    box: BoxDep,
) -> EndpointWithSecret:
    """Events of the listed types (all when empty) are POSTed to `url`, signed with the
    `secret` returned here and never again (roll it to get a new one). A URL that is not
    https in live mode, or resolves to a private, loopback or link-local address, is a 422."""
    row, secret = await service.create_endpoint(sessions, box, body, _rules(settings))
    return _with_secret(row, secret)


@endpoints.get("", response_model=EndpointList, responses=_ERRORS, summary="Endpoints")
async def list_endpoints(_: MerchantDep, sessions: SessionFactoryDep) -> EndpointList:
    rows = await service.list_endpoints(sessions)
    return EndpointList(data=[EndpointOut.of(r) for r in rows])


@endpoints.get("/{endpoint_id}", response_model=EndpointOut, responses=_ERRORS, summary="Endpoint")
async def get_endpoint(
    endpoint_id: EndpointId, _: MerchantDep, sessions: SessionFactoryDep
) -> EndpointOut:
    return EndpointOut.of(await service.get_endpoint(sessions, endpoint_id))


@endpoints.patch("/{endpoint_id}", response_model=EndpointOut, responses=_ERRORS, summary="Change")
async def update_endpoint(
    endpoint_id: EndpointId,
    body: EndpointUpdate,
    _: MerchantDep,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
) -> EndpointOut:
    """URL, types, description, enabled. A disabled endpoint is sent nothing; what it was
    owed waits and goes out when it is enabled again."""
    row = await service.update_endpoint(sessions, endpoint_id, body, _rules(settings))
    return EndpointOut.of(row)


@endpoints.delete("/{endpoint_id}", status_code=204, responses=_ERRORS, summary="Delete")
async def delete_endpoint(
    endpoint_id: EndpointId, _: MerchantDep, sessions: SessionFactoryDep
) -> Response:
    """What it was still owed is canceled; its delivery record stays with the events."""
    await service.delete_endpoint(sessions, endpoint_id)
    return Response(status_code=204)


@endpoints.post(
    "/{endpoint_id}/roll-secret",
    response_model=EndpointWithSecret,
    responses=_ERRORS,
    summary="New signing secret",
)
async def roll_secret(
    endpoint_id: EndpointId,
    _: MerchantDep,
    sessions: SessionFactoryDep,
    box: BoxDep,
    body: RollSecret | None = None,
) -> EndpointWithSecret:
    """A new secret, shown once. For `overlap_hours` (default 24) deliveries carry two `v1`
    signatures, the new secret's and the old one's, so receivers can switch without a gap."""
    hours = (body or RollSecret()).overlap_hours
    row, secret = await service.roll_secret(sessions, box, endpoint_id, timedelta(hours=hours))
    return _with_secret(row, secret)


@events.get("", response_model=EventPage, responses=_ERRORS, summary="Events, newest first")
async def list_events(
    _: MerchantDep,
    sessions: SessionFactoryDep,
    type: Annotated[EventType | None, Query(description="one event type")] = None,
    object_id: Annotated[
        str | None, Query(max_length=80, description="a payment, session or card id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> EventPage:
    before = None
    if cursor:
        try:
            before = service.decode_cursor(cursor)
        except ValueError as exc:
            raise Unprocessable("The cursor is not one this API returned.") from exc
    rows, next_cursor = await service.list_events(
        sessions, service.EventFilter(type=type, object_id=object_id, before=before, limit=limit)
    )
    return EventPage(data=[EventOut.of(e) for e in rows], next_cursor=next_cursor)


@events.get(
    "/{event_id}", response_model=EventDetailOut, responses=_ERRORS, summary="Event and deliveries"
)
async def get_event(
    event_id: EventId, _: MerchantDep, sessions: SessionFactoryDep
) -> EventDetailOut:
    """The event with each endpoint's delivery and every attempt (status, latency, the first
    bytes of the answer)."""
    return await service.event_detail(sessions, event_id)


@events.post(
    "/{event_id}/redeliver",
    status_code=202,
    response_model=RedeliverOut,
    responses=_ERRORS,
    summary="Send again",
)
async def redeliver(
    event_id: EventId,
    _: MerchantDep,
    sessions: SessionFactoryDep,
    body: RedeliverIn | None = None,
) -> RedeliverOut:
    """Queues the event again, now, to every endpoint it went to, or to `endpoint_id` only
    (which need not have had it)."""
    endpoint_id = body.endpoint_id if body else None
    queued = await service.redeliver(sessions, event_id, endpoint_id)
    return RedeliverOut(event_id=event_id, deliveries=queued)
