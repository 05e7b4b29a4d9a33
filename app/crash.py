"""Crash points: a test seam that kills this process (SIGKILL, as `kill -9` does) at a named
step, so the reliability tier can prove what survives a crash where no real fault can reach.

Armed only in `GATEWAY_MODE=sandbox`, from `SANDBOX_CRASH_POINTS` (comma-separated names, each
optionally `name@n`: only the n-th time the point is reached) read when the app is created; in
live mode they are never armed, whatever the environment says. The points (each
`crash_point("...")` call names one):

- `checkout.before_send`: a checkout pay has claimed its session (the pending payment is
  committed) and is about to call the gateway;
- `onetouch.before_send`: the same for a one-touch charge (`POST /v1/payments`);
- `idempotency.before_answer`: a request with an Idempotency-Key has done its work (what it
  created is committed) and its answer is not stored yet;
- `checkout.before_3ds_authorize` / `checkout.after_3ds_authorize`: a shopper back from 3-D
  Secure (SBPS) has claimed the one authorization call (committed) and is about to make it, or
  it has answered and is not recorded yet;
- `kickback.before_card_read`: a kickback that settled a pay with registration has committed
  the customer's key and the card's number and is about to read the card back (cmd 6).
"""

from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger(__name__)

ENV = "SANDBOX_CRASH_POINTS"
# Point name -> on which pass it kills (1 = the first).
_armed: dict[str, int] = {}
_passes: dict[str, int] = {}


def arm(gateway_mode: str, raw: str | None = None) -> None:
    """Arms the points named in `raw` (default: the environment) when in sandbox mode."""
    names = os.environ.get(ENV, "") if raw is None else raw
    _armed.clear()
    _passes.clear()
    if gateway_mode != "sandbox":
        return
    for item in (n.strip() for n in names.split(",")):
        if item:
            name, _, nth = item.partition("@")
            _armed[name] = int(nth) if nth else 1
    if _armed:
        log.warning("crash points armed (this process kills itself there): %s", _armed)


def crash_point(name: str) -> None:
    """Kills this process at once if `name` is armed (on its chosen pass); nothing otherwise."""
    if name not in _armed:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] == _armed[name]:
        os.kill(os.getpid(), signal.SIGKILL)
