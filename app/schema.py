"""Is the database at the migrations' head? One answer for `/readyz`, the start-up log, the
background loops and `python -m app serve` (which refuses to start when it is behind).

Behind (no schema at all, or an older revision): not ready, the loops wait, every call would
fail. A revision this code does not know is a newer release that already migrated (expand /
contract migrations keep old code working on it during a rolling deploy): ready, with a
warning at start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import ROOT

# Alembic announces each of its built-in plugins at INFO when it is imported: noise in every
# log and CLI output (set before the first import of alembic).
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic.config import Config  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402

log = logging.getLogger(__name__)

VERSION_TABLE = "alembic_version"
MIGRATE_HINT = "run `scripts/app migrate` (alembic upgrade head)"


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


@lru_cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(""))


def head_revisions() -> tuple[str, ...]:
    return tuple(sorted(_scripts().get_heads()))


@dataclass(frozen=True)
class SchemaState:
    current: tuple[str, ...]  # empty: never migrated
    head: tuple[str, ...]
    unknown: tuple[str, ...]  # revisions this code has no migration for (a newer release)

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def behind(self) -> bool:
        """Not at head and not a newer release's schema: this code cannot work on it."""
        return not self.at_head and not self.unknown

    @property
    def message(self) -> str:
        head = ", ".join(self.head)
        if self.at_head:
            return f"the database schema is at the head ({head})"
        current = ", ".join(self.current) or "none (never migrated)"
        if self.unknown:
            return (
                f"the database schema is at {current}, newer than this code's head {head} "
                "(a newer release migrated it)"
            )
        return f"the database schema is at {current}, this code needs {head}: {MIGRATE_HINT}"


def _current(connection: Connection) -> tuple[str, ...]:
    # Plain SQL rather than alembic's MigrationContext, which logs a line at every call.
    if not inspect(connection).has_table(VERSION_TABLE):
        return ()
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return tuple(sorted(str(row[0]) for row in rows))


def _known(scripts: ScriptDirectory, rev: str) -> bool:
    try:
        return scripts.get_revision(rev) is not None
    except Exception:  # alembic raises its own errors for a revision it has no file for
        return False


async def check(engine: AsyncEngine) -> SchemaState:
    """The database's revision against ours; raises what the driver raises when unreachable."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    scripts = _scripts()
    unknown = tuple(rev for rev in current if not _known(scripts, rev))
    return SchemaState(current=current, head=head_revisions(), unknown=unknown)


async def wait_for_head(
    engine: AsyncEngine,
    *,
    report: Callable[[SchemaState], None],
    poll_seconds: float = 5.0,
) -> None:
    """Returns once the schema is not behind (the background loops start then: they would fail
    on every pass against a missing table), logging its state once; `report` gets each check."""
    said: str | None = None
    while True:
        try:
            state = await check(engine)
        except Exception as exc:  # unreachable: the loops cope with an outage themselves
            log.warning("schema check failed (%r); starting the background work anyway", exc)
            return
        report(state)
        if not state.behind:
            if state.unknown:
                log.warning("%s", state.message)
            elif said is not None:
                log.warning("%s: ready", state.message)
            return
        if state.message != said:
            log.error("not ready: %s", state.message)
            said = state.message
        await asyncio.sleep(poll_seconds)
