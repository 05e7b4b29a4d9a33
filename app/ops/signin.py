"""Signing in to the console: an ops API key is exchanged for a random session token (the
cookie), kept here as its digest with the session's CSRF token. Each function takes the
session factory and owns its short transaction."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.ops.models import OpsSession

# However active, a session ends this long after sign-in (then: sign in again).
ABSOLUTE_LIFETIME = timedelta(hours=8)
# last_seen_at is written at most this often (a page view is not a write each time).
_TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class Operator:
    """Who is signed in: their key's label and their session's CSRF token."""

    label: str
    csrf: str

    @property
    def actor(self) -> str:
        """As the payment trail names them: the same as the API's principal id."""
        return f"ops:{self.label}"

    def csrf_ok(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(presented, self.csrf)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    sessions: async_sessionmaker[AsyncSession], label: str, *, idle: timedelta
) -> tuple[str, Operator]:
    """A new console session for key `label`: (the cookie's token, the operator)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    async with sessions() as session:
        # Ended sessions go when someone signs in: the table stays the size of who is on.
        await session.execute(delete(OpsSession).where(OpsSession.expires_at <= now))
        session.add(
            OpsSession(
                token_digest=_digest(token),
                key_label=label,
                csrf_token=csrf,
                created_at=now,
                last_seen_at=now,
                expires_at=now + min(idle, ABSOLUTE_LIFETIME),
            )
        )
        await session.commit()
    return token, Operator(label, csrf)


async def current(
    sessions: async_sessionmaker[AsyncSession], token: str | None, *, idle: timedelta
) -> Operator | None:
    """The operator of a cookie's token while its session lasts (each use extends it by
    `idle`, never past ABSOLUTE_LIFETIME); None when there is none or it has ended."""
    if not token or len(token) > 100:
        return None
    now = utcnow()
    async with sessions() as session:
        row = await session.get(OpsSession, _digest(token))
        if row is None or row.expires_at <= now:
            return None
        operator = Operator(row.key_label, row.csrf_token)
        if now - row.last_seen_at >= _TOUCH_EVERY:
            row.last_seen_at = now
            row.expires_at = min(now + idle, row.created_at + ABSOLUTE_LIFETIME)
            await session.commit()
        return operator


async def sign_out(sessions: async_sessionmaker[AsyncSession], token: str | None) -> None:
    if not token or len(token) > 100:
        return
    async with sessions() as session:
        await session.execute(delete(OpsSession).where(OpsSession.token_digest == _digest(token)))
        await session.commit()
