"""Test-owned network pieces for the chaos run: a TCP front that really refuses connections for
short windows, a kickback relay that duplicates and shuffles the simulator's kickbacks, and a
scan of shopper-facing answers for leaked internals."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.sandbox.testing import Receive, Scope, Send
from tests.support.fixtures import KICKBACK_PATH, KICKBACK_SECRET, MERCHANT_KEY, OPS_KEY, ROOT
from tests.support.http import wait_http
from tests.support.pg import free_port

# --- the app as its own process ---------------------------------------------------------------


@dataclass
class AppProcess:
    """`uvicorn app.main:app` in its own process (a replica as operators run it; it also lets
    the app use the second core while this process plays the shoppers)."""

    url: str
    client: httpx.AsyncClient  # no credentials (the shopper's browser)
    merchant: httpx.AsyncClient
    ops: httpx.AsyncClient
    proc: subprocess.Popen[bytes] | None = None

    def kill(self) -> None:
        """`kill -9`: the process dies at once, in the middle of whatever it was doing."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def aclose(self) -> None:
        for c in (self.client, self.merchant, self.ops):
            await c.aclose()


# Keep-alive longer than any pause of our clients (as behind a load balancer): an idle
# connection the server closes just as a client reuses it fails before the request is read.
_UVICORN = (
    *(sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1"),
    *("--timeout-keep-alive", "120", "--log-level", "warning"),
)


# The CLI's server (`python -m app serve`): uvicorn with the proxy settings of FORWARDED_ALLOW_IPS.
SERVE = (sys.executable, "-m", "app", "serve", "--host", "127.0.0.1")


def _spawn(
    port: int, env: dict[str, str], log_path: Path, command: Sequence[str]
) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextlib.asynccontextmanager
async def app_processes(
    envs: list[dict[str, str]],
    *,
    db_url: str,
    log_dir: Path,
    name: str = "app",
    command: Sequence[str] = _UVICORN,
) -> AsyncIterator[list[AppProcess]]:
    """One process per env, `uvicorn app.main:app` (the public contract) unless `command`."""
    base = {
        **os.environ,
        "DATABASE_URL": db_url,
        "GATEWAY_MODE": "sandbox",
        "API_KEYS": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
        "KICKBACK_ALLOWED_IPS": "127.0.0.1",
        "KICKBACK_SECRET": KICKBACK_SECRET,
        # As README says to run plain uvicorn when clients connect directly: uvicorn's own
        # default would believe X-Forwarded-For from 127.0.0.1, i.e. from the tests.
        "FORWARDED_ALLOW_IPS": "",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
    }
    procs: list[subprocess.Popen[bytes]] = []
    apps: list[AppProcess] = []
    try:
        for i, env in enumerate(envs):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            procs.append(
                _spawn(
                    port,
                    {**base, "PUBLIC_BASE_URL": url, **env},
                    log_dir / f"{name}-{i}.log",
                    command,
                )
            )
            apps.append(
                AppProcess(
                    url,
                    httpx.AsyncClient(base_url=url, timeout=30),
                    httpx.AsyncClient(
                        base_url=url,
                        timeout=30,
                        headers={"Authorization": f"Bearer {MERCHANT_KEY}"},
                    ),
                    httpx.AsyncClient(
                        base_url=url, timeout=60, headers={"Authorization": f"Bearer {OPS_KEY}"}
                    ),
                    procs[-1],
                )
            )
        for app in apps:
            # Generous: four helpers share two cores, and a cold start imports a lot.
            await asyncio.to_thread(wait_http, f"{app.url}/healthz", 60.0)
        yield apps
    finally:
        for app in apps:
            await app.aclose()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


# --- a TCP front that can refuse connections ------------------------------------------------


class FlakyFront:
    """Forwards TCP connections to `upstream` and, while "down", has no listening socket at all,
    so a client's connect attempt is refused by the kernel (ECONNREFUSED): the request provably
    never left. Every response gets `Connection: close`, so each gateway call opens a new
    connection and meets the front's state of that moment (no pooled connection slips past)."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: asyncio.AbstractServer | None = None
        self._flapper: asyncio.Task[None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.windows = 0
        self.closed_seconds = 0.0

    async def up(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accepted, "127.0.0.1", self.port, reuse_address=True, backlog=256
            )

    def down(self) -> None:
        if self._server is not None:
            self._server.close()  # the listening socket is closed here, synchronously
            self._server = None

    def flap(self, *, closed: float, open_min: float, open_max: float, seed: int) -> None:
        """Refuses connections for `closed` seconds every `open_min`..`open_max` seconds."""
        rng = random.Random(seed)

        async def loop() -> None:
            while True:
                await asyncio.sleep(rng.uniform(open_min, open_max))
                self.down()
                self.windows += 1
                await asyncio.sleep(closed)
                self.closed_seconds += closed
                await self.up()

        self._flapper = asyncio.create_task(loop())

    async def stop_flapping(self) -> None:
        if self._flapper is not None:
            self._flapper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flapper
            self._flapper = None
        await self.up()

    async def close(self) -> None:
        await self.stop_flapping()
        self.down()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.create_task(self._serve(reader, writer))
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe_response(up_reader, writer)),
        ]
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pipes:
                task.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            for w in (writer, up_writer):
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _pipe_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    kept = [line for line in lines[1:] if not line.lower().startswith(b"connection:")]
    writer.write(b"\r\n".join([lines[0], *kept, b"connection: close"]) + b"\r\n\r\n")
    await _pipe(reader, writer)


# --- kickbacks: received from the simulator, delivered duplicated and shuffled --------------


@dataclass
class Delivery:
    query: bytes
    status: int | None
    body: str
    error: str | None = None


@dataclass
class KickbackRelay:
    """The simulator's kickback URL. Answers it `OK` at once, then delivers each kickback
    1-3 times to the app replicas, each copy after a random delay (so copies and different
    payments' notices arrive in a shuffled order, and some before the pay answer is recorded)."""

    seed: int
    # Only collect (answer OK, deliver nothing): the test sends them itself later.
    hold: bool = False
    max_copies: int = 3
    max_delay: float = 3.0
    # Where on the apps: the trusted (secret) path, as the gateway is configured.
    path: str = KICKBACK_PATH
    targets: list[str] = field(default_factory=list)
    received: list[bytes] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tasks: set[asyncio.Task[None]] = set()
        # A new connection per delivery, as a gateway would send them: a pooled connection
        # that the server closes as idle can fail before the request left.
        self._client = httpx.AsyncClient(
            timeout=30, limits=httpx.Limits(max_keepalive_connections=0)
        )
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._serving = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("kickback relay did not start")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        query = bytes(scope.get("query_string", b""))
        self.received.append(query)
        for _ in range(0 if self.hold else self._rng.randint(1, self.max_copies)):
            target = self._rng.choice(self.targets)
            task = asyncio.create_task(
                self._deliver(target, query, self._rng.uniform(0, self.max_delay))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"OK"})

    async def _deliver(self, target: str, query: bytes, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            r = await self._client.send(
                httpx.Request("GET", httpx.URL(f"{target}{self.path}", query=query))
            )
            self.deliveries.append(Delivery(query, r.status_code, r.text))
        except httpx.HTTPError as exc:
            self.deliveries.append(Delivery(query, None, "", f"{type(exc).__name__}: {exc}"))

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        self._server.should_exit = True
        if self._serving is not None:
            await self._serving
        await self._client.aclose()


# --- what a shopper may never see -------------------------------------------------------------

_LEAKS = re.compile(
    r"Traceback|File \"|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|sqlalchemy|asyncpg|psycopg"
    r"|\bhttpx\.|\bhttpcore\b|site-packages|line \d+, in "
)


@dataclass
class ShopperAnswers:
    """Every answer a shopper's browser got: checked for leaks and for readable 5xx."""

    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def check(self, r: httpx.Response, what: str) -> None:
        self.statuses[r.status_code] += 1
        body = r.text
        leak = _LEAKS.search(body)
        if leak:
            self.problems.append(f"{what}: {r.status_code} leaks {leak.group(0)!r}: {body[:300]}")
        if r.status_code < 500:
            return
        ctype = r.headers.get("content-type", "")
        if ctype.startswith("application/problem+json"):
            data: Any = r.json()
            if not (isinstance(data, dict) and data.get("title") and data.get("detail")):
                self.problems.append(f"{what}: {r.status_code} problem without text: {body[:300]}")
            elif str(data.get("type")).endswith("internal-error"):
                self.problems.append(f"{what}: unhandled error (500): {body[:300]}")
        elif ctype.startswith("text/html"):
            if "<title>" not in body or "</html>" not in body:
                self.problems.append(f"{what}: {r.status_code} HTML is not a page: {body[:300]}")
        else:
            self.problems.append(f"{what}: {r.status_code} as {ctype!r}: {body[:300]}")


async def reconcile_open(app: AppProcess) -> dict[str, int]:
    """`POST /v1/reconciliations` over every open payment, a thousand at a time, summed."""
    totals: Counter[str] = Counter()
    for _ in range(10):
        r = await app.ops.post("/v1/reconciliations", json={"scope": "open", "limit": 1000})
        assert r.status_code == 200, r.text
        s = r.json()
        for k in ("checked", "settled", "confirmed", "rescheduled", "flagged", "errors"):
            totals[k] += s[k]
        if s["checked"] < 1000:
            break
    return dict(totals)


# --- a reverse proxy in front of an app, as deploy/nginx.conf is ------------------------------


class ForwardingProxy:
    """Listens on 127.0.0.1 and forwards every request to `upstream`, with X-Forwarded-For set
    to the address the request came from (overwriting whatever the client sent, as
    `proxy_set_header X-Forwarded-For $remote_addr` does). Clients made by `client(source)`
    connect from another loopback address each, so the proxy sees distinct shoppers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._http = httpx.AsyncClient(base_url=upstream, timeout=30)
        # proxy_headers off: this proxy takes the connection's address, never a header.
        self._server = uvicorn.Server(
            uvicorn.Config(
                self,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="off",
                proxy_headers=False,
            )
        )
        self._serving: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._serving = asyncio.create_task(self._server.serve())
        for _ in range(200):
            if self._server.started:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("forwarding proxy did not start")

    def client(self, *, source: str) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(local_address=source)
        return httpx.AsyncClient(base_url=self.url, timeout=30, transport=transport)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() not in (b"host", b"x-forwarded-for", b"connection", b"content-length")
        ]
        headers.append((b"x-forwarded-for", scope["client"][0].encode()))
        query = scope.get("query_string", b"")
        target = scope["path"] + (f"?{query.decode('latin-1')}" if query else "")
        r = await self._http.request(scope["method"], target, content=body, headers=headers)
        await send(
            {
                "type": "http.response.start",
                "status": r.status_code,
                "headers": [
                    (k.encode(), v.encode())
                    for k, v in r.headers.items()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")
                ],
            }
        )
        await send({"type": "http.response.body", "body": r.content})

    async def close(self) -> None:
        self._server.should_exit = True
        if self._serving is not None:
            await self._serving
        await self._http.aclose()
