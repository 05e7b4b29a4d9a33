"""One server per SQLite file. Two servers on one file would each run an in-process sandbox with
its own ledger, and each janitor would "settle" the other's payments against the wrong one (a
charge its own simulator never saw is failed after an hour). A second server on the same file
is refused at start with what to do instead; PostgreSQL (replicas) is not affected.

The lock is an flock on `<database file>.lock`, held for the life of the process: the kernel
drops it when the process ends, however it ends, so a crash never leaves a stale lock."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url

_held: dict[Path, int] = {}


class InstanceLocked(RuntimeError):
    """Another running server holds this database file."""


def sqlite_file(database_url: str) -> Path | None:
    url = make_url(database_url)
    if not url.drivername.startswith("sqlite") or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve()


def acquire(database_url: str) -> None:
    """Takes the lock for this process (again: no-op); InstanceLocked if another holds it."""
    path = sqlite_file(database_url)
    if path is None:
        return
    lock = path.with_name(path.name + ".lock")
    if lock in _held:
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        other = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise InstanceLocked(
            f"another server (pid {other}) is already running on {path}. A second instance "
            "needs a database and a spool folder of its own, e.g. "
            "PORT=8001 DATABASE_URL=sqlite+aiosqlite:///./data/second.sqlite3 "
            "SPOOL_DIR=./data/spool-second scripts/serve"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    _held[lock] = fd
