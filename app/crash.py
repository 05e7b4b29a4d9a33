"""Crash points: a test seam that kills this process (SIGKILL, as `kill -9` does) at a named
step, so the reliability tier can prove what survives a crash where no real fault can reach.

Armed only in `GATEWAY_MODE=sandbox`, from `SANDBOX_CRASH_POINTS` (comma-separated names) read
when the app is created; in live mode they are never armed, whatever the environment says.
The points (each `crash_point("...")` call names one):

- `checkout.before_send`: a checkout pay has claimed its session (the pending payment is
  committed) and is about to call the gateway;
- `onetouch.before_send`: the same for a one-touch charge (`POST /v1/payments`).
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "SANDBOX_CRASH_POINTS"
_armed: frozenset[str] = frozenset()


def arm(gateway_mode: str, raw: str | None = None) -> None:
    """Arms the points named in `raw` (default: the environment) when in sandbox mode."""
    global _armed
    names = os.environ.get(ENV, "") if raw is None else raw
    points = frozenset(n.strip() for n in names.split(",") if n.strip())
    _armed = points if gateway_mode == "sandbox" else frozenset()
    if _armed:
        log.warning("crash points armed (this process kills itself there): %s", sorted(_armed))


def crash_point(name: str) -> None:
    """Kills this process at once if `name` is armed; nothing otherwise."""
    if name in _armed:
        os.kill(os.getpid(), signal.SIGKILL)
