"""Waiting for a process we started to answer HTTP (tests and benchmarks)."""

from __future__ import annotations

import time

import httpx


def wait_http(url: str, timeout: float = 90.0) -> None:
    # Generous: several app processes importing at once on a busy two-core machine take a while.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")
