"""The record of reconciliation passes: each function takes the session factory and runs its
own short transaction, so a pass's progress is visible to every replica while it runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.reconcile.models import ReconcilePass
from app.reconcile.service import ReconcileSummary

# A running pass writes its heartbeat at least this often...
HEARTBEAT = timedelta(seconds=1)
# ...so one silent for this long stopped with its process.
INTERRUPTED_AFTER = timedelta(seconds=60)
# The changes a pass keeps for its page (the figures count them all).
CHANGES_KEPT = 200
# What a pass changed, worth a row on its page ("confirmed"/"rescheduled"/"skipped" are not).
_CHANGED = frozenset({"settled", "flagged", "error"})
FIGURES = ("checked", "settled", "confirmed", "rescheduled", "flagged", "skipped", "errors")


@dataclass
class Progress:
    """A pass as it goes: its figures, and the changes worth showing."""

    total: int | None = None
    summary: ReconcileSummary = field(default_factory=ReconcileSummary)
    orphans: list[str] | None = None

    def values(self) -> dict[str, Any]:
        s = self.summary
        changes: list[dict[str, str | None]] = [
            {
                "payment_id": c.payment_id,
                "result": c.result,
                "from": c.from_status,
                "to": c.to_status,
                "note": c.note,
            }
            for c in s.results
            if c.result in _CHANGED
        ][:CHANGES_KEPT]
        changes += [
            {"payment_id": p, "result": "orphan", "from": None, "to": "unknown", "note": None}
            for p in (self.orphans or [])
        ][: max(0, CHANGES_KEPT - len(changes))]
        return {
            "total": self.total,
            **{name: getattr(s, name) for name in FIGURES},
            "orphans": len(self.orphans or []),
            "changes": changes,
        }


@dataclass(frozen=True)
class PassView:
    """A pass as the console shows it."""

    row: ReconcilePass
    now: datetime

    @property
    def state(self) -> str:
        """running, done, failed, or interrupted (running, but silent for too long)."""
        if self.row.status == "running" and self.now - self.row.heartbeat_at > INTERRUPTED_AFTER:
            return "interrupted"
        return self.row.status

    @property
    def running(self) -> bool:
        return self.state == "running"


async def start(
    sessions: async_sessionmaker[AsyncSession], *, trigger: str, actor: str | None, scope: str
) -> int:
    async with sessions.begin() as session:
        row = ReconcilePass(trigger=trigger, actor=actor, scope=scope, status="running")
        session.add(row)
        await session.flush()
        return row.id


async def step(sessions: async_sessionmaker[AsyncSession], pass_id: int, p: Progress) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(ReconcilePass)
            .where(ReconcilePass.id == pass_id, ReconcilePass.status == "running")
            .values(**p.values(), heartbeat_at=utcnow())
        )


async def finish(
    sessions: async_sessionmaker[AsyncSession],
    pass_id: int,
    p: Progress,
    *,
    error: str | None = None,
) -> None:
    now = utcnow()
    async with sessions.begin() as session:
        await session.execute(
            update(ReconcilePass)
            .where(ReconcilePass.id == pass_id)
            .values(
                **p.values(),
                status="failed" if error else "done",
                error=error[:500] if error else None,
                heartbeat_at=now,
                finished_at=now,
            )
        )


async def record_finished(
    sessions: async_sessionmaker[AsyncSession],
    p: Progress,
    *,
    trigger: str,
    actor: str | None,
    scope: str,
    started_at: datetime,
) -> None:
    """A pass recorded only once it is over (the janitor's, when it did something)."""
    now = utcnow()
    async with sessions.begin() as session:
        session.add(
            ReconcilePass(
                trigger=trigger,
                actor=actor,
                scope=scope,
                status="done",
                started_at=started_at,
                heartbeat_at=now,
                finished_at=now,
                **p.values(),
            )
        )


async def recent(sessions: async_sessionmaker[AsyncSession], limit: int = 20) -> list[PassView]:
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(ReconcilePass)
                .order_by(ReconcilePass.started_at.desc(), ReconcilePass.id.desc())
                .limit(limit)
            )
        ).all()
    now = utcnow()
    return [PassView(r, now) for r in rows]


async def get(sessions: async_sessionmaker[AsyncSession], pass_id: int) -> PassView | None:
    async with sessions() as session:
        row = await session.get(ReconcilePass, pass_id)
    return PassView(row, utcnow()) if row is not None else None
