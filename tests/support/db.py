"""Test databases: create one per purpose on the shared server, migrated with the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import GatewayCallLog

ROOT = Path(__file__).resolve().parents[2]


def dsn(url: str) -> str:
    """asyncpg's DSN for a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str, prefix: str = "rp_test") -> str:
    """A new empty database on the server of `server_url`; returns its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def alembic(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs the alembic CLI exactly as an operator would."""
    env = {**os.environ, "DATABASE_URL": db_url}
    return subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


async def gateway_call_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Rows in the gateway-call audit log: every call the app made (or tried to)."""
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(GatewayCallLog)) or 0)
