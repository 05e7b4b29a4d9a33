"""The vendor script watcher (PCI DSS 6.4.3 / 11.6.1): fetches each gateway script the payment
pages load, hashes it (SHA-384), and compares it with the hash a person approved.

The gateway's scripts have unversioned URLs, so no SRI pin can hold across vendor deploys;
instead a pass fetches them from the production egress (the gateway calls' client: same
proxy and timeouts), records every check, and on a new hash that is not approved alerts
(`rp_script_changes_total{key}`, an ERROR log line, a `script.changed` event, the console)
once per new hash, not once per pass. First sight of a script with no approval: sandbox mode
approves it ("sandbox: first seen"); live mode records it as unapproved, which alerts and
puts the pages' fallback on until a person approves it. A failed fetch is recorded (a check
`fetch_failed`, the state's failure count, a WARNING on the first of a row) and changes no
verdict: it is not an alert storm, and a tampered script cannot hide behind a failure.

One pass at a time across replicas, one pass per interval: a lease on a `watch_leases` row
(the orphan sweep's pattern) that also keeps when the last pass finished.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.db import utcnow
from app.events import outbox
from app.metrics import SCRIPT_CHANGES, SCRIPT_CHECKS
from app.pagesec.inventory import InventoryScript, gateway_scripts
from app.pagesec.models import PageCheck, ScriptApproval, ScriptCheck, ScriptState, WatchLease

log = logging.getLogger(__name__)

LEASE_NAME = "script_watch"
# Longer than a pass takes (a few fetches, each bounded by the client's timeouts).
LEASE = timedelta(minutes=5)
# A replica looks this often whether a pass is due (the lease row says when the last ran).
PEEK_SECONDS = 60.0
# A gateway script is some tens of kB; anything far larger is not one.
MAX_SCRIPT_BYTES = 2_000_000
# Checks older than this are deleted (a year of evidence, and some).
RETENTION = timedelta(days=400)
SANDBOX_FIRST_SEEN = "sandbox: first seen"
WATCHER = "watcher"
BLOCKING = ("changed", "unapproved")

Verdict = Literal["ok", "changed", "unapproved"]
_HEX = re.compile(r"[0-9a-fA-F]{96}")


# --- hashes -----------------------------------------------------------------------------------


def sri_sha384(body: bytes) -> str:
    """The bytes' SHA-384 in the SRI form: "sha384-<base64>"."""
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")


def parse_hash(text: str) -> str:
    """A hash a person typed, as the SRI form: "sha384-<base64>" or 96 hex digits (what
    `sha384sum` prints); ValueError saying what is wrong otherwise."""
    value = text.strip()
    if _HEX.fullmatch(value):
        return "sha384-" + base64.b64encode(bytes.fromhex(value)).decode("ascii")
    if value.startswith("sha384-"):
        try:
            raw = base64.b64decode(value.removeprefix("sha384-"), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) == 48:
            return "sha384-" + base64.b64encode(raw).decode("ascii")
    raise ValueError("a SHA-384 is 'sha384-<base64>' or 96 hex digits (sha384sum's output)")


def judge(sha384: str, approved: str | None) -> Verdict:
    """ok: the approved bytes; unapproved: nothing was ever approved; changed: other bytes."""
    if approved is None:
        return "unapproved"
    return "ok" if sha384 == approved else "changed"


def absolute(url: str, public_base: str) -> str:
    """The URL as the shopper's browser loads it: our own paths against PUBLIC_BASE_URL."""
    return public_base.rstrip("/") + url if url.startswith("/") else url


# --- fetching ---------------------------------------------------------------------------------


class FetchFailed(Exception):
    """The script could not be fetched (the reason is the message, for the check's row)."""


async def fetch(http: httpx.AsyncClient, url: str, *, max_bytes: int = MAX_SCRIPT_BYTES) -> bytes:
    """GET `url` as the browser would (no credentials; redirects are not followed: a script
    URL that moved is a change a person should look at). Raises FetchFailed."""
    try:
        async with http.stream("GET", url, headers={"Accept": "*/*"}) as answer:
            if answer.status_code != 200:
                raise FetchFailed(f"HTTP {answer.status_code}")
            body = b""
            async for chunk in answer.aiter_bytes():
                body += chunk
                if len(body) > max_bytes:
                    raise FetchFailed(f"larger than {max_bytes} bytes")
            return body
    except httpx.HTTPError as exc:
        raise FetchFailed(f"{type(exc).__name__}: {exc}"[:300]) from None


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptResult:
    key: str
    url: str
    status: str  # ok | changed | unapproved | fetch_failed
    sha384: str | None
    approved: str | None
    error: str | None = None
    alerted: bool = False


@dataclass(frozen=True)
class PageResult:
    page: str
    url: str
    status: str  # ok | drift | fetch_failed
    problems: tuple[str, ...] = ()
    error: str | None = None
    alerted: bool = False


@dataclass
class PassResult:
    ran: bool = False  # False: another replica holds the lease, or no pass is due
    scripts: list[ScriptResult] = field(default_factory=list)
    pages: list[PageResult] = field(default_factory=list)

    @property
    def alerts(self) -> int:
        return sum(r.alerted for r in self.scripts) + sum(r.alerted for r in self.pages)


# A header check pass (app/pagesec/headercheck.py), handed in by the caller so this module
# does not decide which pages are probed.
PageChecker = Callable[[], Awaitable[list[PageResult]]]


# --- recording --------------------------------------------------------------------------------


def _event_data(state: ScriptState) -> dict[str, Any]:
    return {
        "key": state.key,
        "url": state.url,
        "status": state.status,
        "current_sha384": state.current_sha384,
        "approved_sha384": state.approved_sha384,
        "changed_at": state.changed_at.isoformat() if state.changed_at else None,
    }


outbox.register(ScriptState, "page.script", _event_data, lambda s: s.key)


async def _ensure_state(
    sessions: async_sessionmaker[AsyncSession], script: InventoryScript, url: str
) -> None:
    """The key's state row exists (made on first sight; a racing insert is as good)."""
    async with sessions() as session:
        if await session.get(ScriptState, script.key) is not None:
            return
        session.add(ScriptState(key=script.key, url=url, status="pending", fetch_failures=0))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()


async def record(
    sessions: async_sessionmaker[AsyncSession],
    script: InventoryScript,
    url: str,
    *,
    sha384: str | None,
    error: str | None,
    sandbox: bool,
    now: datetime | None = None,
) -> ScriptResult:
    """One check's row, the key's new state, and the alert when the verdict is new."""
    now = now or utcnow()
    await _ensure_state(sessions, script, url)
    async with sessions() as session:
        state = await session.get(ScriptState, script.key, with_for_update=True)
        assert state is not None
        state.url, state.last_checked_at = url, now
        if sha384 is None:
            state.fetch_failures += 1
            state.fetch_error = (error or "failed")[:500]
            session.add(
                ScriptCheck(
                    key=script.key,
                    url=url,
                    fetched_at=now,
                    status="fetch_failed",
                    error=state.fetch_error,
                )
            )
            failures = state.fetch_failures
            result = ScriptResult(
                script.key, url, "fetch_failed", None, state.approved_sha384, state.fetch_error
            )
            await session.commit()
            SCRIPT_CHECKS.labels(script.key, "fetch_failed").inc()
            # The first failure of a row only: a vendor outage must not flood the log.
            if failures == 1:
                log.warning(
                    "script watch: %s (%s) could not be fetched: %s", script.key, url, result.error
                )
            return result
        if state.approved_sha384 is None and sandbox:
            session.add(
                ScriptApproval(
                    key=script.key,
                    sha384=sha384,
                    approved_by=WATCHER,
                    reason=SANDBOX_FIRST_SEEN,
                    approved_at=now,
                )
            )
            state.approved_sha384 = sha384
        verdict = judge(sha384, state.approved_sha384)
        new = verdict != "ok" and (state.status != verdict or state.current_sha384 != sha384)
        state.status, state.current_sha384 = verdict, sha384
        state.fetch_failures, state.fetch_error = 0, None
        if verdict == "ok":
            state.changed_at = None
        elif new:
            state.changed_at = now
            outbox.emit(session, "script.changed", state)
        session.add(
            ScriptCheck(key=script.key, url=url, fetched_at=now, sha384=sha384, status=verdict)
        )
        result = ScriptResult(script.key, url, verdict, sha384, state.approved_sha384, alerted=new)
        await session.commit()
    SCRIPT_CHECKS.labels(script.key, verdict).inc()
    if new:
        SCRIPT_CHANGES.labels(script.key).inc()
        log.error(
            "script watch: %s (%s) is %s: %s, approved %s; approve it (python -m app scripts "
            "approve, or /ops/scripts) once a person has looked at it",
            script.key,
            url,
            verdict,
            sha384,
            result.approved or "none",
            extra={"event": "script_changed", "key": script.key, "status": verdict},
        )
    return result


async def check_scripts(
    sessions: async_sessionmaker[AsyncSession], http: httpx.AsyncClient, settings: Settings
) -> list[ScriptResult]:
    """One fetch and verdict per gateway script (no lease: `run_pass` holds it)."""
    results: list[ScriptResult] = []
    sandbox = settings.gateway_mode == "sandbox"
    for script in gateway_scripts(settings):
        url = absolute(script.url, settings.public_base_url)
        try:
            body = await fetch(http, url)
        except FetchFailed as exc:
            results.append(
                await record(sessions, script, url, sha384=None, error=str(exc), sandbox=sandbox)
            )
            continue
        results.append(
            await record(
                sessions, script, url, sha384=sri_sha384(body), error=None, sandbox=sandbox
            )
        )
    return results


# --- the lease ----------------------------------------------------------------------------------


async def _lease(
    sessions: async_sessionmaker[AsyncSession], *, now: datetime, every: timedelta | None
) -> str | None:
    """The lease's token, or None: another replica holds it, or (with `every`) the last pass
    finished less than `every` ago."""
    token = secrets.token_hex(16)
    async with sessions() as session:
        row = await session.get(WatchLease, LEASE_NAME, with_for_update=True)
        if row is None:
            session.add(WatchLease(name=LEASE_NAME))
            try:
                await session.flush()
            except IntegrityError:
                return None  # another replica made it just now: it runs
            row = await session.get(WatchLease, LEASE_NAME)
            assert row is not None
        elif row.lease_until is not None and row.lease_until > now:
            return None
        if every is not None and row.last_run_at is not None and now - row.last_run_at < every:
            return None
        row.lease_until, row.lease_token = now + LEASE, token
        await session.commit()
    return token


async def _release(sessions: async_sessionmaker[AsyncSession], token: str) -> None:
    async with sessions() as session:
        await session.execute(
            update(WatchLease)
            .where(WatchLease.name == LEASE_NAME, WatchLease.lease_token == token)
            .values(lease_until=None, lease_token=None, last_run_at=utcnow())
        )
        await session.commit()


async def _purge(sessions: async_sessionmaker[AsyncSession], before: datetime) -> None:
    async with sessions() as session:
        await session.execute(delete(ScriptCheck).where(ScriptCheck.fetched_at < before))
        await session.execute(delete(PageCheck).where(PageCheck.checked_at < before))
        await session.commit()


async def run_pass(
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    settings: Settings,
    *,
    pages: PageChecker | None = None,
    every: timedelta | None = None,
) -> PassResult:
    """One pass under the lease: the scripts, then the pages. `every`: only when the last
    pass finished at least that long ago (the schedule); None: now (the CLI)."""
    now = utcnow()
    token = await _lease(sessions, now=now, every=every)
    if token is None:
        return PassResult()
    try:
        done = PassResult(ran=True, scripts=await check_scripts(sessions, http, settings))
        if pages is not None:
            done.pages = await pages()
        await _purge(sessions, now - RETENTION)
    finally:
        await _release(sessions, token)
    return done


async def loop(
    sessions: async_sessionmaker[AsyncSession],
    http: httpx.AsyncClient,
    settings: Settings,
    *,
    pages: PageChecker | None = None,
) -> None:
    """Forever (each replica runs one): a pass whenever the last one, by any replica, finished
    SCRIPT_WATCH_INTERVAL_SECONDS ago."""
    every = timedelta(seconds=settings.script_watch_interval_seconds)
    peek = min(PEEK_SECONDS, settings.script_watch_interval_seconds)
    while True:
        try:
            await run_pass(sessions, http, settings, pages=pages, every=every)
        except Exception as exc:  # the database may be down: try again next round
            log.warning("script watch deferred: %s", exc)
        await asyncio.sleep(peek)
