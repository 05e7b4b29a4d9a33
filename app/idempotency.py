"""Idempotency keys for POSTs that move money (Stripe's rules).

Same key + same body -> the first response replayed; same key + another body -> 422;
same key while the first request is still running -> 409. Keys are kept at least 7 days.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import Header, Request, Response
from sqlalchemy import Integer, String, Text, UniqueConstraint, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.carddata import CARD_SHAPED, contains_card
from app.db import Base, utcnow
from app.errors import AppError, Conflict, FieldError, Unprocessable, problem_from_error
from app.metrics import IDEMPOTENCY


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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # An in-flight claim older than this is considered abandoned (the process died).
    locked_until: Mapped[datetime | None]
    expires_at: Mapped[datetime] = mapped_column(index=True)


CLAIM_SECONDS = 300  # longer than any gateway call; a claim older than this was abandoned
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


def _field_error(message: str) -> Unprocessable:
    return Unprocessable(message, errors=[FieldError(field="Idempotency-Key", message=message)])


async def run_idempotent(
    request: Request,
    sessions: async_sessionmaker[AsyncSession],
    *,
    principal: str,
    key: str | None,
    payload: bytes,
    handler: Callable[[], Awaitable[Response]],
    required: bool = False,
) -> Response:
    """Runs `handler` at most once per (principal, key); replays its stored answer after."""
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

    row_id = await _claim(sessions, principal, key, method, path, digest)
    if isinstance(row_id, Response):
        return row_id
    try:
        response = await handler()
    except AppError as exc:
        if exc.status >= 500:
            await _release(sessions, row_id)
            raise
        response = problem_from_error(request, exc)
    except BaseException:
        # Nothing durable happened that we could replay faithfully: let the client retry.
        await _release(sessions, row_id)
        raise
    if response.status_code >= 500:
        await _release(sessions, row_id)
        return response
    await _complete(sessions, row_id, response)
    response.headers["Idempotency-Key"] = key
    return response


async def _claim(
    sessions: async_sessionmaker[AsyncSession],
    principal: str,
    key: str,
    method: str,
    path: str,
    digest: str,
) -> int | Response:
    now = utcnow()
    async with sessions() as session:
        for _ in range(2):
            row = IdempotencyKey(
                principal=principal,
                key=key,
                method=method,
                path=path,
                request_hash=digest,
                status="in_flight",
                locked_until=now + timedelta(seconds=CLAIM_SECONDS),
                expires_at=now + timedelta(days=KEEP_DAYS),
            )
            session.add(row)
            try:
                await session.commit()
                IDEMPOTENCY.labels("new").inc()
                return row.id
            except IntegrityError:
                await session.rollback()
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
            if existing.request_hash != digest:
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
                    headers={"Idempotent-Replayed": "true", "Idempotency-Key": key},
                )
            if existing.locked_until is not None and existing.locked_until > now:
                IDEMPOTENCY.labels("conflict").inc()
                raise Conflict(
                    "A request with this Idempotency-Key is still in progress; retry shortly."
                )
            # The first attempt's process died: take the claim over, atomically.
            result = await session.execute(
                update(IdempotencyKey)
                .where(
                    IdempotencyKey.id == existing.id,
                    IdempotencyKey.status == "in_flight",
                    IdempotencyKey.locked_until == existing.locked_until,
                )
                .values(locked_until=now + timedelta(seconds=CLAIM_SECONDS))
            )
            await session.commit()
            if getattr(result, "rowcount", 0) == 1:
                return existing.id
            raise Conflict("A request with this Idempotency-Key is still in progress.")
    raise Conflict("Could not claim the Idempotency-Key; retry shortly.")


async def _complete(
    sessions: async_sessionmaker[AsyncSession], row_id: int, response: Response
) -> None:
    async with sessions() as session:
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id)
            .values(
                status="completed",
                response_status=response.status_code,
                response_body=bytes(response.body).decode(),
                response_content_type=response.media_type or response.headers.get("content-type"),
                locked_until=None,
            )
        )
        await session.commit()


async def _release(sessions: async_sessionmaker[AsyncSession], row_id: int) -> None:
    async with sessions() as session:
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
        await session.commit()


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
