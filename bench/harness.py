"""Benchmark plumbing: processes (PostgreSQL, simulator, app, a bare baseline), a load driver,
latency percentiles and RSS. Everything listens on 127.0.0.1 and stops by itself."""

from __future__ import annotations

import asyncio
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.db import alembic, create_database
from tests.support.http import wait_http
from tests.support.pg import PgServer, destroy, free_port, start_server

ROOT = Path(__file__).resolve().parents[1]
MERCHANT_KEY = "sk_bench_merchant_01"
OPS_KEY = "sk_bench_ops_key_001"
AID = "100001"


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass(frozen=True)
class Load:
    """What a load run measured: throughput and latencies in milliseconds."""

    requests: int
    seconds: float
    errors: int
    p50: float
    p99: float

    @classmethod
    def of(cls, latencies_ms: Sequence[float], seconds: float, errors: int) -> Load:
        return cls(
            len(latencies_ms),
            seconds,
            errors,
            percentile(latencies_ms, 50),
            percentile(latencies_ms, 99),
        )

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def drive(
    requests: Sequence[Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]],
    *,
    concurrency: int,
    base_url: str,
    headers: dict[str, str] | None = None,
    ok: Callable[[httpx.Response], bool] = lambda r: r.status_code < 400,
) -> Load:
    """Runs every request once with `concurrency` in flight; an asyncio httpx driver (wrk
    cannot send a different body per request)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)

    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60
    ) as client:

        async def worker() -> None:
            nonlocal errors
            for make in queue:
                started = time.perf_counter()
                try:
                    response = await make(client)
                    good = ok(response)
                except httpx.HTTPError:
                    good = False
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not good

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return Load.of(latencies, elapsed, errors)


def wrk(
    url: str, *, seconds: int, connections: int, threads: int = 1, script: Path | None = None
) -> Load:
    """Load with wrk (Debian), which costs far less CPU than a Python driver; `script` is a
    Lua file that makes each request."""
    extra = ["-s", str(script)] if script else []
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0

    def pct(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)\b", out)
        if m is None:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    return Load(total, total / rps if rps else 0.0, errors, pct("50"), pct("99"))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RSS for pid {pid}")


def machine() -> dict[str, Any]:
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        m = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = m.group(1).strip() if m else model
    mem_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        m = re.search(r"MemTotal:\s+(\d+)", meminfo.read_text())
        mem_kb = int(m.group(1)) if m else 0
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.popen.pid


@contextmanager
def process(
    argv: list[str], *, env: dict[str, str], ready_path: str, log_name: str, logs: Path
) -> Iterator[Proc]:
    port = free_port()
    argv = [a.replace("{port}", str(port)) for a in argv]
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / f"{log_name}.log").open("wb") as log:
        popen = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        spy = None
        try:
            wait_http(url + ready_path, timeout=30.0)
            spy = _profile(popen.pid, log_name, logs)
            yield Proc(popen, url)
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
                spy.wait(30)
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(15)
            except subprocess.TimeoutExpired:
                popen.kill()


_profiles = 0


def _profile(pid: int, name: str, logs: Path) -> subprocess.Popen[bytes] | None:
    """With BENCH_PROFILE=1, py-spy samples the app process for its whole life and writes a
    flame graph (SVG) and collapsed stacks next to the process logs."""
    global _profiles
    if not os.environ.get("BENCH_PROFILE") or not name.startswith("app"):
        return None
    _profiles += 1
    out = logs / f"{name}-{_profiles}.txt"
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen(
        [str(spy), "record", "-p", str(pid), "-f", "raw", "-o", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def uvicorn_argv(target: str) -> list[str]:
    # One worker, the production event loop and parser, no access log (its cost is not ours).
    return [
        sys.executable,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@contextmanager
def postgres() -> Iterator[PgServer]:
    # Production durability (fsync on): "stored and committed before the answer" must mean it.
    server = start_server(durable=True)
    try:
        yield server
    finally:
        destroy(server)


async def new_database(server: PgServer, name: str) -> str:
    url = await create_database(server.url, name)
    alembic(url, "upgrade", "head")
    return url


def app_env(db_url: str, simulator_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "GATEWAY_MODE": "sandbox",
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "GATEWAY_AID": AID,
        "API_KEYS": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
        "KICKBACK_ALLOWED_IPS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "DB_POOL_SIZE": "20",
    }
