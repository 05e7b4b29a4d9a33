"""Request bodies: a 100 MB body without a key is refused (413) before it is read, declared or
streamed; bodies that trickle in are a 408 once their time is up; the kickback routes answer 200
with a body whatever arrives (their own smaller cap, cut and stored). Spoken over raw sockets so
the test sees the server's answer while it is still sending."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.kickbacks.models import Kickback
from app.kickbacks.service import MAX_RAW
from tests.integration.test_checkout import SESSION
from tests.reliability.support_chaos import app_processes
from tests.support.fixtures import MERCHANT_KEY, AppFactory

pytestmark = pytest.mark.reliability

MB = 1024 * 1024
CAP = 64 * 1024  # MAX_REQUEST_BODY_BYTES' default
# How long a client here waits for an answer that should come at once (or after the body
# timeout): a bound that tells "answered" from "still open", not a speed assertion.
ANSWER_WITHIN = 20.0


@dataclass
class Answer:
    status: int | None  # None: no answer (the server kept the connection open)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    sent: int = 0  # body bytes the client had written when the answer came


async def _exchange(
    url: str,
    head: str,
    chunks: Iterable[bytes],
    *,
    chunked: bool = False,
    wait: float = ANSWER_WITHIN,
) -> Answer:
    """Sends `head` then the body pieces (a generator may sleep between them) while reading the
    answer, on a plain socket (a write that fails once the server has answered and closed
    must not lose the answer); stops sending once the answer is in."""
    return await asyncio.to_thread(_exchange_blocking, url, head, chunks, chunked, wait)


def _exchange_blocking(
    url: str, head: str, chunks: Iterable[bytes], chunked: bool, wait: float
) -> Answer:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    sock = socket.create_connection((parts.hostname, parts.port))
    answer = Answer(None)
    answered = threading.Event()

    def send_body() -> None:
        with contextlib.suppress(OSError):
            sock.sendall(head.encode())
            for piece in chunks:
                if answered.is_set():
                    return
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                answer.sent += len(piece)
            if chunked:
                sock.sendall(b"0\r\n\r\n")

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    try:
        sock.settimeout(wait)
        data = b""
        with contextlib.suppress(OSError):  # a timeout, or a reset after the answer
            while b"\r\n\r\n" not in data and (piece := sock.recv(65536)):
                data += piece
            head_end = data.find(b"\r\n\r\n")
            if head_end < 0:
                return answer
            lines = data[:head_end].decode("latin-1").split("\r\n")
            answer.status = int(lines[0].split()[1])
            for line in lines[1:]:
                name, _, value = line.partition(":")
                answer.headers[name.strip().lower()] = value.strip()
            length = int(answer.headers.get("content-length", "0"))
            body = data[head_end + 4 :]
            while len(body) < length and (piece := sock.recv(65536)):
                body += piece
            answer.body = body[:length]
        return answer
    finally:
        answered.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        sender.join(10)


def _trickle(total: int, every: float, stop_after: int | None = None) -> Iterator[bytes]:
    """One byte every `every` seconds; after `stop_after` bytes it stalls (until the answer)."""
    for i in range(total):
        if stop_after is not None and i >= stop_after:
            time.sleep(ANSWER_WITHIN)
            return
        yield b"x"
        time.sleep(every)


def _head(method: str, path: str, host: str, **headers: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM): a body read whole shows there even
    after its memory went back to the system."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1)) / 1024


async def _refused_bytes(client: httpx.AsyncClient, reason: str) -> tuple[float, float]:
    """(bodies, bytes read of them) refused for `reason`, from /metrics."""
    text = (await client.get("/metrics")).text
    values = []
    for suffix in ("count", "sum"):
        pattern = rf'^rp_http_body_refused_bytes_{suffix}{{reason="{reason}"}} (\S+)$'
        match = re.search(pattern, text, re.M)
        values.append(float(match.group(1)) if match else 0.0)
    return values[0], values[1]


def _assert_problem(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/problem+json", answer.headers
    body = httpx.Response(200, content=answer.body).json()
    assert body["status"] == status and body["code"] == code, body
    assert body["errors"][0]["field"] == "body" and body["detail"], body


async def test_a_100_mb_body_without_a_key_is_refused_before_it_is_read(
    db_url: str, tmp_path: Path
) -> None:
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    env = {"SPOOL_DIR": str(tmp_path / "spool")}
    async with app_processes([env], db_url=db_url, log_dir=log_dir, name="limits-app") as [app]:
        host = urlsplit(app.url).netloc
        await app.client.get("/healthz")
        rss_before = _peak_rss_mb(app.pid)
        body = [b"x" * MB] * 100
        declared = await _exchange(
            app.url,
            _head(
                "POST",
                "/v1/checkout/sessions",
                host,
                Content_Type="application/json",
                Content_Length=str(100 * MB),
            ),
            body,
        )
        count0, read0 = await _refused_bytes(app.client, "too_large")
        streamed = await _exchange(
            app.url,
            _head(
                "POST",
                "/v1/checkout/sessions",
                host,
                Content_Type="application/json",
                Transfer_Encoding="chunked",
            ),
            body,
            chunked=True,
        )
        count1, read1 = await _refused_bytes(app.client, "too_large")
        rss_after = _peak_rss_mb(app.pid)
        print(
            f"\nFIGURE 100 MB without a key: declared -> {declared.status} after "
            f"{declared.sent / MB:.1f} MB sent, streamed -> {streamed.status} after "
            f"{streamed.sent / MB:.1f} MB sent, app read {read1 - read0:.0f} bytes of it; "
            f"peak RSS {rss_before:.0f} -> {rss_after:.0f} MB"
        )
        _assert_problem(declared, 413, "body_too_large")
        _assert_problem(streamed, 413, "body_too_large")
        assert count1 == count0 + 1
        # The streamed body was cut at the cap: what the app read is the cap and at most one
        # more socket read, not the 100 MB.
        assert CAP < read1 - read0 <= CAP + 256 * 1024, read1 - read0
        # The app still serves.
        assert (await app.client.get("/healthz")).status_code == 200


async def test_bodies_over_the_cap_are_413_and_under_it_work(make_app: AppFactory) -> None:
    app = await make_app(max_request_body_bytes=4096)
    big = {**SESSION, "order_id": "big", "pad": "x" * 5000}
    r = await app.merchant.post("/v1/checkout/sessions", json=big)
    assert r.status_code == 413, r.text
    assert r.json()["code"] == "body_too_large"
    r = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, "order_id": "small"})
    assert r.status_code == 201, r.text
    # The documented answer: every operation that takes a body lists 413 and 408.
    doc = (await app.client.get("/openapi.json")).json()
    create = doc["paths"]["/v1/checkout/sessions"]["post"]["responses"]
    assert {"408", "413"} <= set(create), sorted(create)


async def test_slow_bodies_are_408_and_do_not_hold_the_server(make_app: AppFactory) -> None:
    app = await make_app(request_body_timeout_seconds=1.0)
    host = urlsplit(app.url).netloc
    head = _head(
        "POST",
        "/v1/checkout/sessions",
        host,
        Authorization=f"Bearer {MERCHANT_KEY}",
        Content_Type="application/json",
        Content_Length="2000",
    )
    slow = [
        asyncio.create_task(_exchange(app.url, head, _trickle(2000, every=0.2))) for _ in range(5)
    ]
    # Meanwhile a normal request is served.
    r = await app.merchant.post("/v1/checkout/sessions", json=SESSION)
    assert r.status_code == 201, r.text
    answers = await asyncio.gather(*slow)
    open_ = sum(a.status is None for a in answers)
    print(
        f"\nFIGURE slow bodies: {open_} of {len(answers)} still open after {ANSWER_WITHIN:.0f} "
        f"s, statuses {[a.status for a in answers]}"
    )
    for answer in answers:
        _assert_problem(answer, 408, "body_timeout")
    # A form post that trickles gets the same answer.
    form_head = _head(
        "POST",
        "/checkout/cs_nope",
        host,
        Content_Type="application/x-www-form-urlencoded",
        Content_Length="100",
    )
    _assert_problem(await _exchange(app.url, form_head, _trickle(100, 0.5)), 408, "body_timeout")


async def test_kickbacks_answer_200_whatever_the_body(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(request_body_timeout_seconds=1.0, max_request_body_bytes=4096)
    host = urlsplit(app.url).netloc
    form = "application/x-www-form-urlencoded"
    answers = {
        # Larger than the app's cap, within the kickback's own: stored whole.
        "large": await _exchange(
            app.url,
            _head("POST", "/kickback", host, Content_Type=form, Content_Length="6000"),
            [b"gid=1&rst=1&pad=" + b"y" * (6000 - 16)],
        ),
        # A declared 100 MB: read up to the kickback's cap, answered, the rest never read.
        "declared 100 MB": await _exchange(
            app.url,
            _head("POST", "/kickback", host, Content_Type=form, Content_Length=str(100 * MB)),
            [b"gid=2&rst=1&pad="] + [b"z" * MB] * 100,
        ),
        # Stalls after 10 bytes: answered when its time is up, with what arrived.
        "slow": await _exchange(
            app.url,
            _head("POST", "/kickback", host, Content_Type=form, Content_Length="1000"),
            _trickle(1000, 0.01, stop_after=10),
        ),
    }
    for name, answer in answers.items():
        assert answer.status == 200 and answer.body.strip(), (name, answer)
    async with sessions() as s:
        rows = (await s.execute(select(Kickback).order_by(Kickback.id))).scalars().all()
    bodies = [bytes(r.raw_body) for r in rows]
    assert len(bodies) == 3, [len(b) for b in bodies]
    assert len(bodies[0]) == 6000
    assert len(bodies[1]) == MAX_RAW and bodies[1].startswith(b"gid=2&rst=1&pad=zzz")
    assert bodies[2] == b"x" * 10
