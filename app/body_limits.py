"""A cap on request bodies and on the time they may take to arrive, before any route reads one.

Pure ASGI, ahead of everything that reads a body (the NUL guard, FastAPI's body parsing, the
API key check comes after the body is read): a declared Content-Length over the cap is a 413 at
once, without reading; a streamed (chunked) body is counted as it arrives and refused (413) as
soon as it passes the cap; a body that has not fully arrived `timeout` seconds after the request
started is a 408 (a trickling client holds no connection for long). The body read here, at most
the cap, is handed to the app unchanged.

The gateway's kickback routes (`lenient`) never get an error: the gateway needs a 200 with a body
whatever it sent. Their bodies are read up to their own smaller cap (one byte more, so the route
sees that it was cut) or until the time is up, and the route gets what arrived."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM
from app.metrics import BODY_REFUSED

_NO_BODY = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class _Refusal:
    status: int
    code: str
    title: str
    message: str


class _Read:
    """What was read of a body: its messages (to replay), its size, and why it stopped."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.size = 0
        self.refusal: _Refusal | None = None


class BodyLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        timeout: float,
        lenient: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout
        # Path prefix -> its own cap: these routes always get their request, cut if need be.
        self.lenient = lenient or {}
        self.too_large = _Refusal(
            413,
            "body_too_large",
            "Request body too large",
            f"The request body is larger than {max_bytes} bytes.",
        )
        self.too_slow = _Refusal(
            408,
            "body_timeout",
            "Request body not received in time",
            f"The request body did not arrive within {timeout:g} seconds.",
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _may_have_body(scope):
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        cap = next((c for p, c in self.lenient.items() if path.startswith(p)), None)
        lenient = cap is not None
        limit = cap + 1 if cap is not None else self.max_bytes
        declared = _content_length(scope)
        if not lenient and declared is not None and declared > self.max_bytes:
            BODY_REFUSED.labels("too_large").observe(0)
            await _refuse(scope, send, self.too_large)
            return
        started = time.monotonic()
        read = await self._read(receive, limit, started, lenient=lenient)
        if read.refusal is not None:
            BODY_REFUSED.labels(read.refusal.code.removeprefix("body_")).observe(read.size)
            if not lenient:
                await _refuse(scope, send, read.refusal)
                return
            # A kickback: the route gets what arrived, as one complete body.
            body = b"".join(m.get("body", b"") for m in read.messages)[:limit]
            read.messages = [{"type": "http.request", "body": body, "more_body": False}]
        await self.app(scope, _replay(read.messages, receive), send)

    async def _read(self, receive: Receive, limit: int, started: float, *, lenient: bool) -> _Read:
        read = _Read()
        while True:
            remaining = self.timeout - (time.monotonic() - started)
            try:
                if remaining <= 0:
                    raise TimeoutError
                message = await asyncio.wait_for(receive(), remaining)
            except TimeoutError:
                read.refusal = self.too_slow
                return read
            read.messages.append(message)
            if message["type"] != "http.request":
                return read  # the client went away: the app sees it as it would have
            read.size += len(message.get("body", b""))
            if read.size > limit:
                read.refusal = self.too_large
                return read
            if not message.get("more_body", False):
                return read


def _may_have_body(scope: Scope) -> bool:
    if scope.get("method") not in _NO_BODY:
        return True
    headers = dict(scope.get("headers", []))
    return b"content-length" in headers or b"transfer-encoding" in headers


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


async def _refuse(scope: Scope, send: Send, refusal: _Refusal) -> None:
    body = json.dumps(
        {
            "type": f"/problems/{refusal.code.replace('_', '-')}",
            "title": refusal.title,
            "status": refusal.status,
            "detail": refusal.message,
            "instance": scope.get("path", ""),
            "code": refusal.code,
            "errors": [{"field": "body", "message": refusal.message}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refusal.status,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read: this connection cannot carry another
                # request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
