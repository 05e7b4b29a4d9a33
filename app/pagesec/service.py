"""What the console, the CLI, the report and the card pages read and change of the watcher's
state. Each function takes the session factory and owns its (short) transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.pagesec.inventory import InventoryScript, gateway_scripts
from app.pagesec.models import PageCheck, ScriptApproval, ScriptCheck, ScriptState
from app.pagesec.watcher import BLOCKING, judge, parse_hash

# What a card page does while a gateway script's hash is not approved (SCRIPT_WATCH_ON_CHANGE
# =popup): ROBOT PAYMENT's popup card form, or (SBPS, which has none) no card form at all.
Fallback = Literal["popup", "unavailable"]
MAX_REASON = 500
MAX_BY = 100


class ApprovalRefused(ValueError):
    """Why an approval was not recorded: `code` (the console's text for it) and a readable
    message (the CLI's)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ScriptRow:
    """One inventory script with where it stands (the console's and the CLI's list)."""

    script: InventoryScript
    state: ScriptState | None
    last_check: ScriptCheck | None

    @property
    def status(self) -> str:
        return self.state.status if self.state else "pending"

    @property
    def blocking(self) -> bool:
        return self.status in BLOCKING


async def page_fallback(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Fallback | None:
    """The card pages' fallback now: None (custom form as configured) unless a gateway script
    the pages load has a hash no person approved and SCRIPT_WATCH_ON_CHANGE=popup."""
    if settings.script_watch_on_change == "keep":
        return None
    keys = [s.key for s in gateway_scripts(settings)]
    async with sessions() as session:
        blocked = await session.scalar(
            select(func.count())
            .select_from(ScriptState)
            .where(ScriptState.key.in_(keys), ScriptState.status.in_(BLOCKING))
        )
    if not blocked:
        return None
    return "unavailable" if settings.gateway_provider == "sbps" else "popup"


async def _last_checks(session: AsyncSession) -> dict[str, ScriptCheck]:
    newest = (
        select(ScriptCheck.key, func.max(ScriptCheck.id).label("id"))
        .group_by(ScriptCheck.key)
        .subquery()
    )
    rows = await session.execute(select(ScriptCheck).join(newest, ScriptCheck.id == newest.c.id))
    return {c.key: c for c in rows.scalars()}


async def scripts(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> list[ScriptRow]:
    async with sessions() as session:
        states = {s.key: s for s in (await session.execute(select(ScriptState))).scalars()}
        checks = await _last_checks(session)
    return [ScriptRow(s, states.get(s.key), checks.get(s.key)) for s in gateway_scripts(settings)]


async def approvals(
    sessions: async_sessionmaker[AsyncSession], *, key: str | None = None, limit: int = 200
) -> list[ScriptApproval]:
    stmt = select(ScriptApproval).order_by(
        ScriptApproval.approved_at.desc(), ScriptApproval.id.desc()
    )
    if key is not None:
        stmt = stmt.where(ScriptApproval.key == key)
    async with sessions() as session:
        return list((await session.execute(stmt.limit(limit))).scalars())


async def recent_checks(
    sessions: async_sessionmaker[AsyncSession], *, limit: int = 50
) -> list[ScriptCheck]:
    stmt = select(ScriptCheck).order_by(ScriptCheck.id.desc()).limit(limit)
    async with sessions() as session:
        return list((await session.execute(stmt)).scalars())


async def last_page_checks(sessions: async_sessionmaker[AsyncSession]) -> list[PageCheck]:
    """Each page's newest check."""
    newest = (
        select(PageCheck.page, func.max(PageCheck.id).label("id"))
        .group_by(PageCheck.page)
        .subquery()
    )
    async with sessions() as session:
        rows = await session.execute(
            select(PageCheck).join(newest, PageCheck.id == newest.c.id).order_by(PageCheck.page)
        )
        return list(rows.scalars())


async def page_alerts(
    sessions: async_sessionmaker[AsyncSession], *, limit: int = 50
) -> list[PageCheck]:
    stmt = (
        select(PageCheck).where(PageCheck.status != "ok").order_by(PageCheck.id.desc()).limit(limit)
    )
    async with sessions() as session:
        return list((await session.execute(stmt)).scalars())


async def attention(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> int:
    """For the console's home: scripts whose hash is not approved, plus pages whose last
    check found drift."""
    rows = await scripts(sessions, settings)
    pages = await last_page_checks(sessions)
    return sum(r.blocking for r in rows) + sum(p.status == "drift" for p in pages)


async def approve(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    key: str,
    sha384: str,
    *,
    by: str,
    reason: str,
    now: datetime | None = None,
) -> ScriptState:
    """Records that `by` approved `sha384` for `key` (why: `reason`), and the key's new
    verdict. Raises ApprovalRefused with what is wrong."""
    now = now or utcnow()
    known = {s.key: s for s in gateway_scripts(settings)}
    if key not in known:
        raise ApprovalRefused(
            "unknown_key", f"no gateway script {key!r}; known: {', '.join(sorted(known))}"
        )
    try:
        sha = parse_hash(sha384)
    except ValueError as exc:
        raise ApprovalRefused("bad_hash", str(exc)) from None
    reason, by = reason.strip(), by.strip()
    if not reason:
        raise ApprovalRefused(
            "no_reason", "a reason is required (why these bytes may run on the pages)"
        )
    if len(reason) > MAX_REASON:
        raise ApprovalRefused("long_reason", f"the reason must be at most {MAX_REASON} characters")
    if not by or len(by) > MAX_BY:
        raise ApprovalRefused("no_by", f"who approves must be named (1-{MAX_BY} characters)")
    async with sessions() as session:
        state = await session.get(ScriptState, key, with_for_update=True)
        if state is None:
            state = ScriptState(key=key, url=known[key].url, status="pending", fetch_failures=0)
            session.add(state)
        session.add(
            ScriptApproval(key=key, sha384=sha, approved_by=by, reason=reason, approved_at=now)
        )
        state.approved_sha384 = sha
        if state.current_sha384 is not None:
            state.status = judge(state.current_sha384, sha)
            if state.status == "ok":
                state.changed_at = None
        await session.commit()
    return state
