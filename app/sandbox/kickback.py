"""Kickback sender: the rt=0 result as an HTTP GET with query parameters to `kickback_url`,
after `kickback_delay`, `kickback_duplicates` times, in the background so the payment answer
never waits for the merchant.

An attempt is accepted only when the merchant answers HTTP 200 with a non-empty body (seed
002's kickback section: the gateway judges the notice by it). A notice with no accepted attempt
is re-sent `kickback_resends` times, `kickback_resend_interval_seconds` apart on the simulator's
clock (so tests advance the clock instead of sleeping). Every attempt is recorded for
`GET _sandbox/kickbacks`; each notice with its state for `GET _sandbox/kickbacks/deliveries`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Literal

import httpx

from app.sandbox.models import KickbackDelivery
from app.sandbox.state import SimState

log = logging.getLogger("app.sandbox.kickback")

# The merchant's URL may hold a secret path segment (/kickback/<secret>): not for logs.
_SECRET_SEGMENT = re.compile(r"(/kickback/)[^/?#]+")

AttemptKind = Literal["first", "duplicate", "resend"]


def shown(url: str) -> str:
    return _SECRET_SEGMENT.sub(r"\1***", url)


def accepted(status: int, body: bytes) -> bool:
    """Seed 002: 「通知の成功判定を行っているため、通知先ではContentLengthが0以上が出力される
    よう実装してください」 - an empty answer is a failed notice; and only a 200 (GATEWAY.md)."""
    return status == 200 and len(body) > 0


def schedule(sim: SimState, params: Sequence[tuple[str, str]]) -> None:
    gid = dict(params).get("gid")
    if not sim.config.kickback_url:
        log.info("no kickback_url configured; kickback for gid=%s dropped", gid)
        return
    if sim.config.kickback_duplicates <= 0:
        # The test switch for "the kickback never comes".
        log.info("kickback_duplicates=0; kickback for gid=%s not sent", gid)
        return
    delivery = sim.new_delivery(list(params))
    sim.spawn(_first(sim, delivery))


async def _first(sim: SimState, delivery: KickbackDelivery) -> None:
    if sim.config.kickback_delay > 0:
        await asyncio.sleep(sim.config.kickback_delay)
    copies = max(sim.config.kickback_duplicates, 1)
    kinds: list[AttemptKind] = ["first"]
    kinds.extend("duplicate" for _ in range(copies - 1))
    await _round(sim, delivery, kinds)


async def _resend_when_due(sim: SimState, delivery: KickbackDelivery) -> None:
    assert delivery.next_resend_at is not None
    await sim.clock.wait_until(delivery.next_resend_at)
    delivery.resends += 1
    # The send itself is tracked work (drain waits for it); the wait before it is not.
    sim.spawn(_round(sim, delivery, ["resend"]))


async def _round(sim: SimState, delivery: KickbackDelivery, kinds: list[AttemptKind]) -> None:
    delivery.state = "sending"
    delivery.next_resend_at = None
    # Read the URL and transport now: the host app may swap them in after the simulator
    # started, and a re-send goes wherever the shop's 決済結果通知URL points by then.
    config = sim.config
    async with httpx.AsyncClient(
        transport=config.kickback_transport, timeout=config.kickback_timeout_seconds
    ) as client:
        results = [await _attempt(sim, client, delivery, kind) for kind in kinds]
    if any(results):
        delivery.state = "accepted"
    elif delivery.resends < config.kickback_resends:
        delivery.state = "waiting"
        interval = timedelta(seconds=config.kickback_resend_interval_seconds)
        delivery.next_resend_at = sim.clock.now() + interval
        sim.start_timer(_resend_when_due(sim, delivery))
    else:
        delivery.state = "given_up"
        log.warning("kickback for gid=%s never accepted; giving up", delivery.gid)


async def _attempt(
    sim: SimState, client: httpx.AsyncClient, delivery: KickbackDelivery, kind: AttemptKind
) -> bool:
    url = sim.config.kickback_url
    record: dict[str, object] = {
        "delivery": delivery.id,
        "attempt": len(delivery.attempts) + 1,
        "kind": kind,
        "url": shown(url),
        "params": dict(delivery.params),
        "sent_at": sim.clock.now().isoformat(),
    }
    ok = False
    if not url:
        record.update(status=None, error="no kickback_url configured")
    else:
        try:
            response = await client.get(url, params=tuple(delivery.params))
            ok = accepted(response.status_code, response.content)
            record.update(status=response.status_code, body=response.text[:200])
        except Exception as exc:  # refused, timed out, or an in-process app that raised
            record.update(status=None, error=f"{type(exc).__name__}: {exc}")
            log.warning("kickback to %s failed: %s", shown(url), type(exc).__name__)
    record["accepted"] = ok
    delivery.attempts.append(record)
    sim.kickbacks.append(record)
    return ok
