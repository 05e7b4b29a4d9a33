"""A throwaway PostgreSQL server for the test suite (initdb + pg_ctl, under a second).

Used when TEST_DATABASE_URL is not set. Runs as the `postgres` user when we are root, listens
only on 127.0.0.1 on a free port, and is removed when the suite ends.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _bindir() -> Path:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(cand, "initdb").exists():
            return Path(cand)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found: install them (apt-get install postgresql) "
        "or set TEST_DATABASE_URL"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class PgServer:
    datadir: Path
    port: int
    bindir: Path
    run_as: list[str]
    # Tests trade durability for speed; benchmarks keep PostgreSQL's production defaults.
    durable: bool = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        cmd = [*self.run_as, str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args]
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 "
        opts += "-c max_connections=300"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self.ctl("-o", opts, "-l", str(self.datadir / "server.log"), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        self.ctl("-m", mode, "-w", "stop")


def start_server(*, durable: bool = False) -> PgServer:
    bindir = _bindir()
    root = Path(tempfile.mkdtemp(prefix="rp-pg-"))
    datadir = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root.
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
        root.chmod(0o755)
    subprocess.run(
        [
            *run_as,
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ],
        check=True,
        capture_output=True,
    )
    server = PgServer(
        datadir=datadir, port=free_port(), bindir=bindir, run_as=run_as, durable=durable
    )
    server.start()
    return server


def dump_data(url: str, *, every_database: bool = False) -> str:
    """The data (as SQL) of the database of `url`, or of every database on its server."""
    from sqlalchemy.engine import make_url  # only the dump needs SQLAlchemy here

    u = make_url(url)
    tool, target = ("pg_dumpall", []) if every_database else ("pg_dump", [str(u.database)])
    conn = ["-h", str(u.host), "-p", str(u.port), "-U", str(u.username)]
    proc = subprocess.run(
        [str(_bindir() / tool), *conn, "--data-only", *target],
        check=True,
        capture_output=True,
        text=True,
    )
    return proc.stdout


def destroy(server: PgServer) -> None:
    try:
        server.stop("immediate")
    finally:
        shutil.rmtree(server.datadir.parent, ignore_errors=True)


def _main(argv: list[str]) -> int:
    # `python -m tests.support.pg start` prints "<url> <datadir>"; `stop <datadir>` removes it.
    if argv[:1] == ["start"]:
        server = start_server()
        print(server.url, server.datadir)
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        datadir = Path(argv[1])
        run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        destroy(PgServer(datadir=datadir, port=0, bindir=_bindir(), run_as=run_as))
        return 0
    print("usage: python -m tests.support.pg start | stop <datadir>")
    return 2


if __name__ == "__main__":
    import sys

    raise SystemExit(_main(sys.argv[1:]))
