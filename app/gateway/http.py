"""The one shared httpx client for all gateway traffic (and the fixed-IP egress proxy)."""

from __future__ import annotations

import logging

import httpx

log = logging.getLogger(__name__)

USER_AGENT = f"rp-merchant/0.1 python-httpx/{httpx.__version__}"
# What a call may take beyond its connect and read timeouts (retries, TLS, our own work).
DEADLINE_SLACK = 5.0


def call_deadline(connect_timeout: float | None, read_timeout: float) -> float:
    """How long one call may take in all, its retries included: the one rule for the
    client's default deadline and for an exchange with its own read timeout."""
    return (connect_timeout or 0.0) + read_timeout + DEADLINE_SLACK


# Every connection may stay open: with fewer kept alive than calls in flight, each burst
# closes the extra ones and the next opens them again (TCP and TLS handshakes).
POOL_LIMITS = httpx.Limits(max_connections=50, max_keepalive_connections=50, keepalive_expiry=30)


def make_http_client(
    *,
    connect_timeout: float,
    read_timeout: float,
    proxy: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    base_url: str = "",
) -> httpx.AsyncClient:
    """A client with explicit timeouts and bounded pools.

    `proxy` is the registered fixed-IP egress, so any number of replicas share one source
    IP (the gateway's ER003 allowlist). Environment proxies are ignored on purpose: payment
    traffic must never leave through an egress that is not registered at the gateway.
    """
    if transport is not None and proxy:
        # httpx would route through the proxy and silently bypass the given transport.
        log.warning("gateway proxy ignored: an explicit transport (in-process sandbox) is set")
        proxy = None
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        limits=POOL_LIMITS,
        proxy=proxy or None,
        transport=transport,
        headers={"User-Agent": USER_AGENT},
        follow_redirects=False,
        trust_env=False,
    )
