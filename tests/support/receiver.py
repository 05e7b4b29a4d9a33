"""A shop's webhook receiver for tests: a real HTTP server on 127.0.0.1 that records every
delivery (raw body and headers) and answers as told: 200, 500, slowly, or not at all (stopped).
It verifies nothing itself; the tests do, with the README's receiver code."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tests.support.pg import free_port


@dataclass
class Delivery:
    at: float
    body: bytes
    headers: dict[str, str]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    status: int = 200
    delay: float = 0.0
    got: list[Delivery] = field(default_factory=list)
    _server: uvicorn.Server | None = None
    _task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def _hook(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        if self.delay:
            await asyncio.sleep(self.delay)
        # Recorded as answered: a 500 is a delivery the sender must retry.
        if 200 <= self.status < 300:
            self.got.append(Delivery(time.monotonic(), body, dict(request.headers)))
        return PlainTextResponse("ok" if self.status < 300 else "boom", status_code=self.status)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/hooks", self._hook, methods=["POST"])])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(250):
            if self._server.started:
                return
            await asyncio.sleep(0.02)
        raise RuntimeError("the receiver did not start")

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
            self._server = self._task = None

    async def wait_for(self, count: int, within: float = 30.0) -> list[Delivery]:
        deadline = time.monotonic() + within
        while len(self.got) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.got)} of {count} deliveries came in {within} s")
            await asyncio.sleep(0.05)
        return self.got
