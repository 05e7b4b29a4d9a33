"""Card-testing limits: failed pay attempts per customer and per client IP in a sliding window,
counted in the database so every replica sees the same numbers (per checkout session the
limit is the session's own `attempts` column).

A failure is a row; the count is the rows younger than the window. Once a key reaches its
limit no further pay reaches the gateway, so a key never holds many more rows than its limit;
older rows of a key are deleted whenever it records a new one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, String, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.config import Settings
from app.db import Base, utcnow
from app.errors import TooManyRequests
from app.gateway.base import GatewayErrorInfo, Outcome
from app.metrics import VELOCITY_REJECTIONS

log = logging.getLogger(__name__)

Scope = Literal["customer", "ip"]


class Result(Protocol):
    """A gateway answer: a charge, a card registration, a billing-robo registration."""

    @property
    def outcome(self) -> Outcome: ...

    @property
    def error(self) -> GatewayErrorInfo | None: ...


class PayFailure(Base):
    """One failed pay attempt (a decline, a failed 3-D Secure, a bad token)."""

    __tablename__ = "velocity_failures"
    __table_args__ = (
        CheckConstraint("scope IN ('customer', 'ip')", name="scope"),
        Index("ix_velocity_failures_scope_key_created", "scope", "key", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))  # a customer uid or a client IP address
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


@dataclass(frozen=True)
class Limits:
    """0 turns a limit off."""

    per_session: int = 5
    per_customer: int = 10
    per_ip: int = 20
    window_seconds: int = 3600

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            per_session=settings.velocity_max_attempts_per_session,
            per_customer=settings.velocity_max_failures_per_customer,
            per_ip=settings.velocity_max_failures_per_ip,
            window_seconds=settings.velocity_window_seconds,
        )


def _keys(limits: Limits, customer: str | None, ip: str | None) -> list[tuple[Scope, str, int]]:
    keys: list[tuple[Scope, str, int]] = []
    if customer and limits.per_customer > 0:
        keys.append(("customer", customer, limits.per_customer))
    if ip and limits.per_ip > 0:
        keys.append(("ip", ip[:64], limits.per_ip))
    return keys


async def check(
    session: AsyncSession, limits: Limits, *, customer: str | None, ip: str | None
) -> None:
    """TooManyRequests (429) when the customer or the IP has failed too often lately."""
    since = utcnow() - timedelta(seconds=limits.window_seconds)
    for scope, key, limit in _keys(limits, customer, ip):
        count = await session.scalar(
            select(func.count())
            .select_from(PayFailure)
            .where(PayFailure.scope == scope, PayFailure.key == key, PayFailure.created_at > since)
        )
        if (count or 0) >= limit:
            VELOCITY_REJECTIONS.labels(scope).inc()
            who = "this customer" if scope == "customer" else "your network address"
            raise TooManyRequests(
                f"Too many failed payment attempts for {who}; please try again later.",
                code="too_many_failures",
                headers={"Retry-After": str(limits.window_seconds)},
            )


def counts_as_failure(result: Result) -> bool:
    """Refusals a card tester causes: declines and 3-D Secure failures, bad or reused tokens
    (when paying, and when registering a card: a zero-amount check is as good to a tester).
    Not the gateway's own trouble (maintenance, 5xx, timeouts)."""
    if result.outcome == Outcome.DECLINED:
        return True
    return (
        result.outcome == Outcome.FAILED
        and result.error is not None
        and result.error.http_status in (402, 422)
    )


async def record_failure(
    session: AsyncSession, limits: Limits, *, customer: str | None, ip: str | None
) -> None:
    """Adds the failure in the caller's transaction, dropping the keys' expired rows."""
    now = utcnow()
    for scope, key, _limit in _keys(limits, customer, ip):
        await session.execute(
            delete(PayFailure).where(
                PayFailure.scope == scope,
                PayFailure.key == key,
                PayFailure.created_at <= now - timedelta(seconds=limits.window_seconds),
            )
        )
        session.add(PayFailure(scope=scope, key=key, created_at=now))


async def count_failure(
    sessions: async_sessionmaker[AsyncSession],
    limits: Limits,
    *,
    customer: str | None,
    ip: str | None,
    result: Result,
) -> None:
    """Counts `result` towards the limits when it is a refusal, in its own short transaction:
    a counter that cannot be written must never cost the caller its own record."""
    if not counts_as_failure(result):
        return
    try:
        async with sessions() as session:
            await record_failure(session, limits, customer=customer, ip=ip)
            await session.commit()
    except Exception:
        log.exception("failed attempt not counted for the card-testing limits")
