"""Refuses NUL characters in a request's path, query string or JSON body with a 422.

No value of this API may hold one, and PostgreSQL text cannot store one: without this a NUL
in an id, a filter or a free-text field reached the database and came back as a 500. The
kickback endpoint is left alone: it stores raw bytes and must always answer 200 (its decoder
drops NULs), and so is the mounted sandbox simulator."""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import SANDBOX_MOUNT
from app.errors import PROBLEM

# A NUL as JSON writes it: `\u0000` after an even number of backslashes (else it is text).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000", re.IGNORECASE)
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_EXEMPT = ("/kickback", SANDBOX_MOUNT + "/")


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path == "/kickback" or path.startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or path.encode("utf-8", "surrogateescape")
        if "\x00" in path or _has_nul(raw_path):
            await _refuse(scope, send, "path")
            return
        if _has_nul(scope.get("query_string", b"")):
            await _refuse(scope, send, "query")
            return
        headers = dict(scope.get("headers", []))
        if scope["method"] not in _BODY_METHODS or b"json" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        # JSON bodies of this API are small: read it whole, look, then hand it on unchanged.
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message], receive), send)
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if b"\x00" in body or _JSON_NUL.search(body):
            await _refuse(scope, send, "body")
            return
        first: Message = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, _replay([first], receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return replayed


async def _refuse(scope: Scope, send: Send, where: str) -> None:
    message = f"{where}: must not contain NUL characters"
    body = json.dumps(
        {
            "type": "/problems/validation-error",
            "title": "The request is not valid",
            "status": 422,
            "detail": message,
            "instance": scope.get("path", ""),
            "errors": [{"field": where, "message": "must not contain NUL characters"}],
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
