"""Idempotency keys for POSTs that move money or create things (Stripe's rules).

Same key + same body -> the first response replayed; same key + another body -> 422; same key
while the first request may still be running -> 409. Keys are kept at least 7 days.

A key is bound to what its request created (a payment, a checkout session, a card...) in the
very transaction that creates it: the service calls `bind(session, kind, id)` before its
commit. A retry can then never create (or charge) a second one, whatever happened to the first
request's answer (a crash, a lost connection, a database outage):

- in flight and locked (`locked_until` ahead): a request holds the key -> 409;
- in flight, bound, and no longer locked (its holder died, or failed before storing an
  answer): the answer is rebuilt from the resource by the route's `resume` (which may settle
  it first, e.g. a payment from the charges search); the handler never runs again;
- in flight, not bound, lock expired: nothing was created; the next request runs afresh;
- completed: the stored answer is replayed.

A bound key is never released. Every write of the key's holder is fenced by its claim token,
so a request that lost its key to a take-over can bind, complete or release nothing.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Protocol

from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.carddata import CARD_SHAPED, contains_card
from app.crash import crash_point
from app.db import Base, utcnow
from app.errors import AppError, Conflict, FieldError, Unprocessable, problem_from_error
from app.metrics import IDEMPOTENCY

log = logging.getLogger(__name__)


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("principal", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # Whose key it is (the API key's role and label), so two clients never collide.
    principal: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="in_flight")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_content_type: Mapped[str | None] = mapped_column(String(100))
    # A redirect's target (the console's post/redirect/get answers): replayed with it.
    response_location: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An in-flight claim older than this is considered abandoned (the process died); None:
    # released by a request that failed after binding (its resource answers the next one).
    locked_until: Mapped[datetime | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # The current holder's fencing token (a take-over replaces it).
    claim_token: Mapped[str | None] = mapped_column(String(32))
    # What the request created, bound in the transaction that created it.
    resource_kind: Mapped[str | None] = mapped_column(String(32))
    resource_id: Mapped[str | None] = mapped_column(String(64))


KEEP_DAYS = 7
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
# The same rule for the OpenAPI document (checked by run_idempotent, with its own message).
KEY_SCHEMA: dict[str, object] = {"pattern": f"^{_KEY_RE.pattern}$"}
# The optional header of a POST route (routes that require one say so with `required=True`).
OptionalKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Same key + same request: the first answer replayed (kept 7 days).",
        json_schema_extra=KEY_SCHEMA,
    ),
]


@dataclass(frozen=True)
class Bound:
    """The resource a key's request created."""

    kind: str
    id: str


@dataclass(frozen=True)
class Resumed:
    """The answer rebuilt from a bound resource. `final=False`: the resource is not settled
    yet (a payment still pending or unknown), so the answer is not stored: the next retry
    asks the resource again."""

    response: Response
    final: bool = True


# Rebuilds the route's answer from its bound resource; None: the resource provably did
# nothing (e.g. a payment failed before it was sent), so the request runs afresh.
Resume = Callable[[Bound], Awaitable[Resumed | None]]


@dataclass
class _Claim:
    row_id: int
    token: str
    bound: Bound | None = None


_CURRENT: ContextVar[_Claim | None] = ContextVar("idempotency_claim", default=None)


class InProgress(Conflict):
    """A 409 that only means "not now" (another operation on the same thing is running): never
    stored as a key's answer, so the same key may be retried once that has finished."""


def _field_error(message: str) -> Unprocessable:
    return Unprocessable(message, errors=[FieldError(field="Idempotency-Key", message=message)])


async def bind(session: AsyncSession, kind: str, resource_id: str) -> None:
    """Binds the current request's Idempotency-Key (if it has one) to the resource it is
    creating, in `session`'s transaction: call it before the commit that creates the resource.
    Raises Conflict when a retry has taken the key over meanwhile (the transaction must then
    not commit: the retry owns the key and answers for it)."""
    claim = _CURRENT.get()
    if claim is None:
        return
    if claim.bound is not None:
        if claim.bound != Bound(kind, resource_id):
            raise RuntimeError(f"an Idempotency-Key is already bound to {claim.bound}")
        return
    result = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == claim.row_id,
            IdempotencyKey.claim_token == claim.token,
            IdempotencyKey.resource_id.is_(None),
        )
        .values(resource_kind=kind, resource_id=resource_id)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise Conflict(
            "A retry took this Idempotency-Key over while this request was running; the retry "
            "answers for it.",
            code="idempotency_key_taken_over",
        )
    claim.bound = Bound(kind, resource_id)


async def run_idempotent(
    request: Request,
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: str,
    key: str | None,
    payload: bytes,
    handler: Callable[[], Awaitable[Response]],
    resume: Resume | None = None,
    required: bool = False,
) -> Response:
    """Runs `handler` at most once per (principal, key); replays its stored answer after, or
    rebuilds it with `resume` from the resource the handler bound (see the module doc)."""
    if key is None:
        if required:
            raise _field_error("This endpoint needs an Idempotency-Key header.")
        return await handler()
    if not _KEY_RE.fullmatch(key):
        raise _field_error("Idempotency-Key must be 1-255 printable ASCII characters.")
    if contains_card(key):
        raise _field_error(f"Idempotency-Key {CARD_SHAPED}.")
    method, path = request.method, request.url.path
    digest = hashlib.sha256(b"\n".join([method.encode(), path.encode(), payload])).hexdigest()
    hold = timedelta(seconds=request.app.state.settings.idempotency_claim_seconds)

    claim = await _claim(sessions, principal, key, method, path, digest, hold)
    if isinstance(claim, Response):
        return claim
    if claim.bound is not None:
        resumed = await _resume(sessions, claim, resume)
        if resumed is not None:
            resumed.headers["Idempotent-Replayed"] = "true"
            resumed.headers["Idempotency-Key"] = key
            return resumed
        await _unbind(sessions, claim)

    context = _CURRENT.set(claim)
    try:
        response = await handler()
    except InProgress:
        await _after_failure(sessions, claim)
        raise
    except AppError as exc:
        if exc.status >= 500:
            await _after_failure(sessions, claim)
            raise
        response = problem_from_error(request, exc)
    except BaseException:
        await _after_failure(sessions, claim)
        raise
    finally:
        _CURRENT.reset(context)
    crash_point("idempotency.before_answer")
    await _finish(sessions, claim, response)
    response.headers["Idempotency-Key"] = key
    return response


class _Caller(Protocol):
    """Whose key it is (app.auth.Principal; named by shape, so this module needs no auth)."""

    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class IdempotentRoute:
    """A POST route's Idempotency-Key, as a dependency (`Idempotent`): the route declares
    `idempotent: Idempotent` where it used to declare the header, and answers with
    `await idempotent.run(principal, handler, body=body, resume=resume)`. The header is
    documented in the OpenAPI document as the dependency's parameter, as before."""

    request: Request
    key: str | None

    async def run(
        self,
        principal: _Caller,
        handler: Callable[[], Awaitable[Response]],
        *,
        body: BaseModel | None = None,
        resume: Resume | None = None,
        required: bool = False,
    ) -> Response:
        """`run_idempotent` for this request; the request's identity is `body` (its JSON; no
        body: the method and path alone), so the same key with another body is a 422."""
        sessions: async_sessionmaker[AsyncSession] = self.request.app.state.sessions
        return await run_idempotent(
            self.request,
            sessions,
            principal=principal.id,
            key=self.key,
            payload=b"" if body is None else body.model_dump_json().encode(),
            handler=handler,
            resume=resume,
            required=required,
        )


async def _idempotent_route(request: Request, key: OptionalKeyHeader = None) -> IdempotentRoute:
    return IdempotentRoute(request, key)


Idempotent = Annotated[IdempotentRoute, Depends(_idempotent_route)]


@dataclass(frozen=True)
class _Ask:
    """One request for a key: whose, which, and the request's fingerprint."""

    principal: str
    key: str
    method: str
    path: str
    digest: str


async def _claim(
    sessions: async_sessionmaker[AsyncSession],
    principal: str,
    key: str,
    method: str,
    path: str,
    digest: str,
    hold: timedelta,
) -> _Claim | Response:
    """A new claim on the key, a take-over of an abandoned one, or the stored answer;
    raises the 422 (another request) and 409 (in flight) of the module doc."""
    ask = _Ask(principal, key, method, path, digest)
    now = utcnow()
    token = secrets.token_hex(16)
    async with sessions() as session:
        for _ in range(2):
            row_id = await _insert(sessions, ask, token, now, hold)
            if row_id is not None:
                IDEMPOTENCY.labels("new").inc()
                return _Claim(row_id, token)
            existing = await session.scalar(
                select(IdempotencyKey).where(
                    IdempotencyKey.principal == principal, IdempotencyKey.key == key
                )
            )
            if existing is None:
                continue  # released between our insert and our read: try once more
            if existing.expires_at < now:
                await session.delete(existing)
                await session.commit()
                continue
            replay = _replay_or_refuse(existing, ask, now)
            if replay is not None:
                return replay
            taken = await _take_over(session, existing, ask, token, now + hold)
            await session.commit()
            return _taken_over(taken, existing, ask, token)
    raise Conflict("Could not claim the Idempotency-Key; retry shortly.")


async def _insert(
    sessions: async_sessionmaker[AsyncSession],
    ask: _Ask,
    token: str,
    now: datetime,
    hold: timedelta,
) -> int | None:
    """The new key's row id (committed in its own transaction), or None when the key exists
    already."""
    row = IdempotencyKey(
        principal=ask.principal,
        key=ask.key,
        method=ask.method,
        path=ask.path,
        request_hash=ask.digest,
        status="in_flight",
        locked_until=now + hold,
        expires_at=now + timedelta(days=KEEP_DAYS),
        claim_token=token,
    )
    async with sessions() as session:
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
            return None
        return row.id


def _replay_or_refuse(existing: IdempotencyKey, ask: _Ask, now: datetime) -> Response | None:
    """The stored answer of a completed key; raises for another request (422) or one still in
    flight (409); None: its holder is gone, the key may be taken over."""
    if existing.request_hash != ask.digest:
        IDEMPOTENCY.labels("mismatch").inc()
        raise _field_error(
            "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request."
        )
    if existing.status == "completed":
        IDEMPOTENCY.labels("replayed").inc()
        return Response(
            content=existing.response_body or "",
            status_code=existing.response_status or 200,
            media_type=existing.response_content_type,
            headers={"Idempotent-Replayed": "true", "Idempotency-Key": ask.key}
            | ({"Location": existing.response_location} if existing.response_location else {}),
        )
    if existing.locked_until is not None and existing.locked_until > now:
        IDEMPOTENCY.labels("conflict").inc()
        raise Conflict("A request with this Idempotency-Key is still in progress; retry shortly.")
    return None


async def _take_over(
    session: AsyncSession, existing: IdempotencyKey, ask: _Ask, token: str, locked_until: datetime
) -> bool:
    """Claims the key of a holder that died (or failed after binding) atomically; False if
    another retry took it first. The caller commits."""
    result = await session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.id == existing.id,
            IdempotencyKey.status == "in_flight",
            IdempotencyKey.claim_token.is_not_distinct_from(existing.claim_token),
        )
        .values(locked_until=locked_until, claim_token=token)
    )
    return getattr(result, "rowcount", 0) == 1


def _taken_over(taken: bool, existing: IdempotencyKey, ask: _Ask, token: str) -> _Claim:
    """The claim a take-over won, logged; a 409 when another retry took the key first."""
    if not taken:
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    bound = None
    if existing.resource_kind and existing.resource_id:
        bound = Bound(existing.resource_kind, existing.resource_id)
    IDEMPOTENCY.labels("taken_over").inc()
    log.warning(
        "Idempotency-Key of %s taken over (%s)",
        ask.principal,
        f"bound to {bound.kind} {bound.id}" if bound else "nothing was created",
    )
    return _Claim(existing.id, token, bound)


async def _resume(
    sessions: async_sessionmaker[AsyncSession], claim: _Claim, resume: Resume | None
) -> Response | None:
    """The answer from the key's resource, stored when final; None to run afresh."""
    assert claim.bound is not None
    try:
        if resume is None:
            raise Conflict(
                f"The first request with this Idempotency-Key created {claim.bound.kind} "
                f"{claim.bound.id}, but its answer was lost.",
                code="idempotency_answer_lost",
                extra={"resource": claim.bound.kind, "resource_id": claim.bound.id},
            )
        resumed = await resume(claim.bound)
    except BaseException:
        await _after_failure(sessions, claim)
        raise
    if resumed is None:
        return None
    IDEMPOTENCY.labels("resumed").inc()
    if resumed.final:
        await _finish(sessions, claim, resumed.response)
    else:
        await _after_failure(sessions, claim)
    return resumed.response


async def _unbind(sessions: async_sessionmaker[AsyncSession], claim: _Claim) -> None:
    """The bound resource did nothing: the request starts over and binds what it creates."""
    async with sessions() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == claim.row_id, IdempotencyKey.claim_token == claim.token)
            .values(resource_kind=None, resource_id=None)
        )
        await session.commit()
    claim.bound = None


async def _finish(
    sessions: async_sessionmaker[AsyncSession], claim: _Claim, response: Response
) -> None:
    """Stores the answer; a 5xx of a request that created nothing releases the key instead
    (nothing happened that a retry could repeat)."""
    async with sessions() as session:
        fenced = (IdempotencyKey.id == claim.row_id, IdempotencyKey.claim_token == claim.token)
        if response.status_code >= 500:
            result = await session.execute(
                delete(IdempotencyKey).where(*fenced, IdempotencyKey.resource_id.is_(None))
            )
            if getattr(result, "rowcount", 0) == 1:
                await session.commit()
                return
        result = await session.execute(
            update(IdempotencyKey)
            .where(*fenced)
            .values(
                status="completed",
                response_status=response.status_code,
                response_body=bytes(response.body).decode(),
                response_content_type=response.media_type or response.headers.get("content-type"),
                response_location=response.headers.get("location"),
                locked_until=None,
            )
        )
        await session.commit()
    if getattr(result, "rowcount", 0) != 1:
        log.warning("Idempotency-Key answer not stored: a retry took the key over")


async def _after_failure(sessions: async_sessionmaker[AsyncSession], claim: _Claim) -> None:
    """The request failed without an answer to store. Unbound, the key is released (nothing
    was created: a retry may run afresh); bound, it is unlocked but kept, so the next retry
    answers from the resource instead of creating (or charging) again. If the database is
    down this fails too: the key then stays locked until its claim expires."""
    try:
        async with sessions() as session:
            fenced = (IdempotencyKey.id == claim.row_id, IdempotencyKey.claim_token == claim.token)
            await session.execute(
                delete(IdempotencyKey).where(*fenced, IdempotencyKey.resource_id.is_(None))
            )
            await session.execute(
                update(IdempotencyKey)
                .where(*fenced, IdempotencyKey.resource_id.is_not(None))
                .values(locked_until=None)
            )
            await session.commit()
    except Exception as exc:
        log.warning("Idempotency-Key left locked until its claim expires: %r", exc)


PURGE_BATCH = 500


async def purge_expired(
    sessions: async_sessionmaker[AsyncSession], *, batch: int = PURGE_BATCH, max_batches: int = 10
) -> int:
    """Deletes keys past `expires_at`, `batch` rows per short transaction and at most
    `max_batches` per call (a background loop calls it again later). Any number of replicas
    may run it at once: on PostgreSQL rows another one is deleting are skipped."""
    purged = 0
    for _ in range(max_batches):
        async with sessions() as session:
            expired = (
                select(IdempotencyKey.id)
                .where(IdempotencyKey.expires_at < utcnow())
                .order_by(IdempotencyKey.expires_at)
                .limit(batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                expired = expired.with_for_update(skip_locked=True)
            result = await session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired))
            )
            await session.commit()
        deleted = int(getattr(result, "rowcount", 0) or 0)
        purged += deleted
        if deleted < batch:
            break
    return purged
