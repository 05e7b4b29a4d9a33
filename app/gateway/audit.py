"""The gateway-call audit log: every request (masked) and raw response, with latency."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, BigInteger, Float, Index, Integer, String, Text, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow
from app.logging import request_id_var

if TYPE_CHECKING:
    from app.gateway.base import GatewayCall

log = logging.getLogger(__name__)


class GatewayCallLog(Base):
    __tablename__ = "gateway_calls"
    # The ops console's latency chart reads a window of calls by time.
    __table_args__ = (Index("ix_gateway_calls_started", "started_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    # Our payment id (or another correlation id); deliberately no foreign key so the audit
    # write can never fail because of the state of the row it describes.
    ref: Mapped[str | None] = mapped_column(String(64), index=True)
    operation: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[str] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    http_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    latency_ms: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str | None] = mapped_column(String(64))
    # The X-Request-ID of the API request (or background pass) that made the call.
    request_id: Mapped[str | None] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def _storable(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: a garbled answer must still reach the audit trail."""
    return text.replace("\x00", "\ufffd") if text else text


class DbCallRecorder:
    """Writes each gateway call in its own short transaction, so the audit trail survives
    whatever happens to the caller's transaction."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __call__(self, call: GatewayCall) -> None:
        # A Core insert: one statement on the path of every gateway call, no unit of work.
        stmt = insert(GatewayCallLog).values(
            ref=call.ref,
            operation=call.operation,
            endpoint=call.endpoint,
            request=dict(call.request),
            http_status=call.http_status,
            response_body=_storable(call.response_body),
            latency_ms=call.latency_ms,
            outcome=str(call.outcome),
            error_code=call.error_code,
            request_id=request_id_var.get(),
            started_at=call.started_at,
            created_at=utcnow(),
        )
        async with self._sessions() as session:
            await session.execute(stmt)
            await session.commit()
