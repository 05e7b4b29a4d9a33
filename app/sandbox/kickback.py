"""Kickback sender: the rt=0 result as an HTTP GET with query parameters to `kickback_url`,
after `kickback_delay`, `kickback_duplicates` times. Runs as a background task so the payment
answer never waits for the merchant, and records every attempt for `GET _sandbox/kickbacks`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence

import httpx

from app.sandbox.state import SimState

log = logging.getLogger("app.sandbox.kickback")

# The merchant's URL may hold a secret path segment (/kickback/<secret>): not for logs.
_SECRET_SEGMENT = re.compile(r"(/kickback/)[^/?#]+")


def shown(url: str) -> str:
    return _SECRET_SEGMENT.sub(r"\1***", url)


def schedule(sim: SimState, params: Sequence[tuple[str, str]]) -> None:
    if not sim.config.kickback_url:
        log.info("no kickback_url configured; kickback for gid=%s dropped", dict(params).get("gid"))
        return
    sim.spawn(_deliver(sim, list(params)))


async def _deliver(sim: SimState, params: list[tuple[str, str]]) -> None:
    config = sim.config
    if config.kickback_delay > 0:
        await asyncio.sleep(config.kickback_delay)
    # Read the URL and transport now: the host app may swap them in after the simulator started.
    url, transport = config.kickback_url, config.kickback_transport
    async with httpx.AsyncClient(transport=transport, timeout=10.0) as client:
        for attempt in range(1, max(config.kickback_duplicates, 0) + 1):
            record: dict[str, object] = {
                "url": shown(url),
                "params": dict(params),
                "attempt": attempt,
                "sent_at": sim.clock.now().isoformat(),
            }
            try:
                response = await client.get(url, params=tuple(params))
                record.update(status=response.status_code, body=response.text[:200])
            except httpx.HTTPError as exc:
                record.update(status=None, error=f"{type(exc).__name__}: {exc}")
                log.warning("kickback to %s failed: %s", shown(url), type(exc).__name__)
            sim.kickbacks.append(record)
