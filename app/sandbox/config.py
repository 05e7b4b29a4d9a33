"""Simulator settings: one mutable dataclass, so the control API and the host app can retune a
running simulator (the host app swaps in its own ASGI transport for kickbacks after start-up)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class SandboxConfig:
    aid: str = "100001"
    search_api_key: str = "sandbox-search-key"
    # Empty = any source IP; otherwise every other source gets ER003, as on the real gateway.
    allowed_ips: list[str] = field(default_factory=list)
    # Where rt=0 results go (HTTP GET with query parameters).
    kickback_url: str = ""
    # Lets a host app receive kickbacks in-process instead of over the network.
    kickback_transport: httpx.AsyncBaseTransport | None = None
    kickback_delay: float = 0.0
    # The gateway's retry policy is unknown: duplicates let clients prove they are idempotent.
    kickback_duplicates: int = 1
    # Acceptance (seed 002: the notice counts as delivered only on a non-empty answer; we
    # also require HTTP 200): what was not accepted is re-sent `kickback_resends` times,
    # `kickback_resend_interval_seconds` apart on the simulator's clock. The real schedule is
    # not published; docs/gateway.md states this one as our assumption.
    kickback_timeout_seconds: float = 10.0
    kickback_resends: int = 5
    kickback_resend_interval_seconds: float = 3600.0
    # 接続認証 (connection authentication): when set, every gateway request must carry `ut`
    # (Unix seconds, within the tolerance of the simulator's clock) and `hak` = SHA-256 hex of
    # ut followed by this code; otherwise ER001. Empty = off, as on a shop that never set it.
    connection_auth_code: str = ""
    connection_auth_tolerance_seconds: float = 300.0
    require_3ds: bool = True
    # Seed 000 pp.14, 19 list `sf` twice in the answer (gid..ta,sf,id,ps,uid,key,num):
    # true answers rt=1 payment lines in that literal layout (GATEWAY.md's has one sf).
    answer_second_sf: bool = False
    slow_seconds: float = 2.0
    hang_seconds: float = 60.0
    search_max_results: int = 54000  # ER520 at this many results or more (seed 003)
    search_slow_seconds: float = 0.0  # every charges-search answer waits this long first
    token_ttl_seconds: int = 900
    # First payment number. Long-running hosts start from the clock (see time_based_gid_start)
    # so a restarted simulator never hands out a gid an old database already holds.
    gid_start: int = 10000001
    # Billing robo (請求管理ロボ) API: login, source IPs (empty = any, else code 13) and the
    # documented limit of 300 requests per 5 minutes per source IP (429).
    billing_robo_user_id: str = "sandbox@billing-robo.example"
    billing_robo_access_key: str = "sandbox-billing-robo-key"
    billing_robo_allowed_ips: list[str] = field(default_factory=list)
    billing_robo_rate_limit: int = 300
    billing_robo_rate_window_seconds: float = 300.0


# Fields the control API may change; transports are Python objects, not JSON.
TUNABLE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(SandboxConfig) if f.name != "kickback_transport"
)


def config_as_json(config: SandboxConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in TUNABLE_FIELDS}


def time_based_gid_start() -> int:
    """Above every gid an earlier run could have issued (unless it made more than 1,000
    payments a second), and only 12 digits: a 13-19 digit run would look like a card number
    to the masking of logs and audit trails."""
    return (int(time.time()) - 1_600_000_000) * 1000


def _truthy(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


def config_from_env(env: Mapping[str, str]) -> SandboxConfig:
    """Standalone configuration (`python -m app.sandbox`) from SANDBOX_* variables."""
    config = SandboxConfig(gid_start=time_based_gid_start())
    if env.get("SANDBOX_AID"):
        config.aid = env["SANDBOX_AID"].strip()
    if "SANDBOX_ALLOWED_IPS" in env:
        ips = env["SANDBOX_ALLOWED_IPS"].split(",")
        config.allowed_ips = [ip.strip() for ip in ips if ip.strip()]
    if env.get("SANDBOX_KICKBACK_URL"):
        config.kickback_url = env["SANDBOX_KICKBACK_URL"].strip()
    if env.get("SANDBOX_CONNECTION_AUTH_CODE"):
        config.connection_auth_code = env["SANDBOX_CONNECTION_AUTH_CODE"].strip()
    if env.get("SANDBOX_SEARCH_API_KEY"):
        config.search_api_key = env["SANDBOX_SEARCH_API_KEY"].strip()
    if env.get("SANDBOX_REQUIRE_3DS"):
        config.require_3ds = _truthy(env["SANDBOX_REQUIRE_3DS"])
    if env.get("SANDBOX_BILLING_ROBO_USER_ID"):
        config.billing_robo_user_id = env["SANDBOX_BILLING_ROBO_USER_ID"].strip()
    if env.get("SANDBOX_BILLING_ROBO_ACCESS_KEY"):
        config.billing_robo_access_key = env["SANDBOX_BILLING_ROBO_ACCESS_KEY"].strip()
    return config
