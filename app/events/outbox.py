"""`emit` records that the shop must be told of a change; the event row is written when the
transaction commits, rendered from the object as it is then, so an event exists if and only if
its change committed and carries the committed state.

Domains register how their objects are shown (`register`); this module imports none of them.
`emit` takes the session and never commits: the caller's transaction owns the event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, UOWTransaction

from app.db import new_id
from app.events.models import Event, EventDelivery, WebhookEndpoint

Renderer = Callable[[Any], dict[str, Any]]

EventType = Literal[
    "checkout.session.completed",
    "checkout.session.expired",
    "payment.authorized",
    "payment.captured",
    "payment.canceled",
    "payment.failed",
    "payment.unknown",
    "payment.needs_attention",
    "payment.reauthorized",
    "customer.card.added",
    "customer.card.deleted",
    "billing.card.registered",
    "billing.card.failed",
    "script.changed",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)

_KEY = "rp_outbox"
_WROTE = "rp_outbox_wrote"
_LISTENERS: list[Callable[[], None]] = []


def object_key(object_type: str, object_id: str) -> str:
    """What per-object delivery order is kept by (a payment's events arrive in order)."""
    return f"{object_type}:{object_id}"


@dataclass(frozen=True, slots=True)
class _Kind:
    object_type: str
    render: Renderer
    object_id: Callable[[Any], str]


_KINDS: dict[type, _Kind] = {}
# Status -> event type, for objects whose every status change is told (`watch`).
_WATCHED: dict[type, dict[str, str]] = {}


def register(
    cls: type, object_type: str, render: Renderer, object_id: Callable[[Any], str]
) -> None:
    """How objects of `cls` are named and shown in events (called by the owning domain)."""
    _KINDS[cls] = _Kind(object_type, render, object_id)


def watch(cls: type, told: dict[str, str]) -> None:
    """Every flush that inserts an object of `cls` with, or moves one to, a status in `told`
    emits that status's event: one rule for all the paths that change such rows (a card is
    added by a page, an API call, a kickback, a sync; deleted by a call or a repair)."""
    _WATCHED[cls] = told


def _pending(session: Session) -> list[tuple[str, object, dict[str, Any]]]:
    found: list[tuple[str, object, dict[str, Any]]] = session.info.setdefault(_KEY, [])
    return found


@event.listens_for(Session, "before_flush")
def _watch(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    for obj in [*session.new, *session.dirty]:
        told = _WATCHED.get(type(obj))
        if told is None:
            continue
        status = getattr(obj, "status", None)
        if status is None and obj in session.new:
            default = type(obj).__table__.c.status.default
            status = getattr(default, "arg", None)
        if obj in session.new:
            moved = True
        else:
            history = inspect(obj).attrs.status.history
            moved = bool(history.added) and list(history.deleted) != list(history.added)
        if moved and status in told:
            _pending(session).append((told[status], obj, {}))


def emit(
    session: AsyncSession, type_: str, obj: object, *, extra: dict[str, Any] | None = None
) -> None:
    """The shop is told `type_` of `obj` if (and when) this transaction commits. `extra`:
    fields the object does not hold (e.g. the payment that completed a session)."""
    if type_ not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    if type(obj) not in _KINDS:
        raise TypeError(f"no event renderer for {type(obj).__name__}")
    _pending(session.sync_session).append((type_, obj, extra or {}))


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    # The objects' final state first (server defaults, the last changes; the watched changes
    # this flush makes are collected too), then the events.
    session.flush()
    pending: list[tuple[str, object, dict[str, Any]]] = session.info.pop(_KEY, [])
    if not pending:
        return
    # One delivery per (event, enabled endpoint that wants its type), in this transaction
    # too: a committed event is never without the deliveries it is owed.
    endpoints = session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.enabled.is_(True), WebhookEndpoint.deleted_at.is_(None)
        )
    ).all()
    for type_, obj, extra in pending:
        kind = _KINDS[type(obj)]
        row = Event(
            id=new_id("evt"),
            type=type_,
            object_type=kind.object_type,
            object_id=kind.object_id(obj),
            data={**kind.render(obj), **extra},
        )
        session.add(row)
        for endpoint_id, wanted in endpoints:
            if not wanted or type_ in wanted:
                # The dispatcher is woken only when there is something to send.
                session.info[_WROTE] = True
                session.add(
                    EventDelivery(
                        event_id=row.id,
                        endpoint_id=endpoint_id,
                        object_key=object_key(row.object_type, row.object_id),
                    )
                )


@event.listens_for(Session, "after_commit")
def _told(session: Session) -> None:
    if session.info.pop(_WROTE, False):
        for listener in _LISTENERS:
            listener()


def on_commit(listener: Callable[[], None]) -> None:
    """`listener()` runs after each commit in this process that wrote deliveries (the
    dispatcher looks at once instead of at its next poll)."""
    _LISTENERS.append(listener)


def off_commit(listener: Callable[[], None]) -> None:
    if listener in _LISTENERS:
        _LISTENERS.remove(listener)


@event.listens_for(Session, "after_rollback")
@event.listens_for(Session, "after_soft_rollback")
def _forget(session: Session, *_: object) -> None:
    # A rolled-back change is not told: nothing of it may be written later.
    session.info.pop(_KEY, None)
    session.info.pop(_WROTE, None)
