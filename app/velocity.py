"""Card-testing limits: failed pay attempts per customer and per client IP in a sliding window,
counted in the database so every replica sees the same numbers (per checkout session the
limit is the session's own `attempts` column).

A failure is a row; the count is the rows younger than the window plus the attempts in flight.
An attempt is reserved before the gateway is called, in the transaction that claims the pay and
serialized per key (a PostgreSQL advisory lock; on SQLite the reservation's INSERT takes the
database's write lock first), so concurrent attempts on any number of replicas cannot all pass
a check made before any of them failed: a key never has more failures plus attempts in flight
than its limit. The reservation becomes a failure or is dropped when the answer is recorded;
one left by a dead process stops counting after RESERVATION_SECONDS. A key's expired rows are
deleted whenever it reserves."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Index,
    Integer,
    String,
    and_,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.config import Settings
from app.db import Base, utcnow
from app.errors import TooManyRequests
from app.gateway.base import GatewayErrorInfo, Outcome
from app.metrics import VELOCITY_REJECTIONS

log = logging.getLogger(__name__)

Scope = Literal["customer", "ip"]
# Longer than any attempt (two gateway calls with their deadlines, billing robo's 429 retries):
# a reservation older than this was left by a process that died and no longer counts.
RESERVATION_SECONDS = 600


class Result(Protocol):
    """A gateway answer: a charge, a card registration, a billing-robo registration."""

    @property
    def outcome(self) -> Outcome: ...

    @property
    def error(self) -> GatewayErrorInfo | None: ...


class PayFailure(Base):
    """One failed pay attempt (a decline, a failed 3-D Secure, a bad token), or, while
    `in_flight_until` is set, an attempt reserved and not answered yet."""

    __tablename__ = "velocity_failures"
    __table_args__ = (
        CheckConstraint("scope IN ('customer', 'ip')", name="scope"),
        Index("ix_velocity_failures_scope_key_created", "scope", "key", "created_at"),
        # The ops console counts a window's failures of every scope.
        Index("ix_velocity_failures_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))  # a customer uid or a client IP address
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    in_flight_until: Mapped[datetime | None]


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


@dataclass(frozen=True)
class Reservation:
    """The rows an attempt reserved (none when no limit applies)."""

    ids: tuple[int, ...] = field(default=())


def _too_many(scope: Scope, limits: Limits) -> TooManyRequests:
    VELOCITY_REJECTIONS.labels(scope).inc()
    who = "this customer" if scope == "customer" else "your network address"
    return TooManyRequests(
        f"Too many failed payment attempts for {who}; please try again later.",
        code="too_many_failures",
        headers={"Retry-After": str(limits.window_seconds)},
    )


async def reserve(
    session: AsyncSession, limits: Limits, *, customer: str | None, ip: str | None
) -> Reservation:
    """Reserves one attempt for the customer and the IP in the caller's transaction (the one
    that claims the pay), or TooManyRequests (429) when a key's failures in the window plus
    its attempts in flight reach its limit. The caller commits; `settle` afterwards."""
    keys = sorted(_keys(limits, customer, ip))
    if not keys:
        return Reservation()
    now = utcnow()
    since = now - timedelta(seconds=limits.window_seconds)
    dialect = session.get_bind().dialect.name
    rows = []
    for scope, key, _limit in keys:
        if dialect == "postgresql":
            # One at a time per key, across replicas, until this transaction ends.
            lock = func.hashtextextended(f"velocity:{scope}:{key}", 0)
            await session.execute(select(func.pg_advisory_xact_lock(lock)))
        # SQLite: this first write takes the database's write lock (held to the commit).
        await session.execute(
            delete(PayFailure).where(
                PayFailure.scope == scope,
                PayFailure.key == key,
                or_(
                    and_(PayFailure.in_flight_until.is_(None), PayFailure.created_at <= since),
                    PayFailure.in_flight_until <= now,
                ),
            )
        )
        row = PayFailure(
            scope=scope,
            key=key,
            created_at=now,
            in_flight_until=now + timedelta(seconds=RESERVATION_SECONDS),
        )
        session.add(row)
        rows.append(row)
    await session.flush()
    for scope, key, limit in keys:
        count = await session.scalar(
            select(func.count())
            .select_from(PayFailure)
            .where(
                PayFailure.scope == scope,
                PayFailure.key == key,
                or_(
                    and_(PayFailure.in_flight_until.is_(None), PayFailure.created_at > since),
                    PayFailure.in_flight_until > now,
                ),
            )
        )
        if (count or 0) > limit:  # our own reservation is one of them
            raise _too_many(scope, limits)
    return Reservation(ids=tuple(row.id for row in rows))


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


async def count_refusal(
    sessions: async_sessionmaker[AsyncSession],
    limits: Limits,
    result: Result,
    *,
    customer: str | None,
    ip: str | None,
) -> None:
    """An answer that came after its attempt's reservation ended (3-D Secure's authorization,
    made when the shopper returns: the pay's reservation ended at the redirect), counted as a
    failure for its keys when it is a refusal. Its own transaction, never the caller's loss
    (like `settle`)."""
    keys = _keys(limits, customer, ip)
    if not keys or not counts_as_failure(result):
        return
    now = utcnow()
    try:
        async with sessions() as session:
            session.add_all(
                PayFailure(scope=scope, key=key, created_at=now, in_flight_until=None)
                for scope, key, _limit in keys
            )
            await session.commit()
    except Exception:
        log.exception("card-testing failure not counted")


async def settle(
    sessions: async_sessionmaker[AsyncSession],
    reservation: Reservation,
    result: Result | None,
) -> None:
    """The attempt's answer: a refusal turns its reservation into a failure, anything else
    (success, the gateway's own trouble, no answer: `result` None) drops it. Its own short
    transaction: a counter that cannot be written must never cost the caller its record (the
    reservation then expires)."""
    if not reservation.ids:
        return
    mine = PayFailure.id.in_(reservation.ids)
    try:
        async with sessions() as session:
            if result is not None and counts_as_failure(result):
                await session.execute(
                    update(PayFailure).where(mine).values(created_at=utcnow(), in_flight_until=None)
                )
            else:
                await session.execute(delete(PayFailure).where(mine))
            await session.commit()
    except Exception:
        log.exception("card-testing reservation not settled (it expires by itself)")
