"""SBPS simulator settings: one mutable dataclass the control API retunes (`_sandbox/config`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass
class SbpsConfig:
    merchant_id: str = "30132"
    service_id: str = "002"
    # The Basic-auth password and the last part of every sps_hashcode (40 characters, as issued).
    hash_key: str = "c48e0e1a8a8d49fb9b6e9ad2f57a1b7c3d2e4f60"
    # limit_second when a request leaves it out, and how far ahead of our clock a
    # request_date may be (the service's clock and the merchant's differ a little).
    default_limit_second: int = 600
    future_tolerance_seconds: float = 300.0
    # The token's validity is not public (notes [?]): short enough to test, long enough to pay.
    token_ttl_seconds: int = 600
    tds_info_token_ttl_seconds: int = 600
    # How long a 3-D Secure authentication (TA02) stays usable for ST01-00118-101.
    tds_authentication_ttl_seconds: int = 900
    # Sales (ST02-00201-101) right on commit (自動売上) instead of a separate sales request.
    auto_sales: bool = False
    slow_seconds: float = 2.0
    hang_seconds: float = 60.0
    # Where redirect_url points; empty = this simulator as the request reached it.
    public_base_url: str = ""
    # First tracking_id (14 digits). Standalone runs start from the clock: see __main__.
    tracking_start: int = 10_000_000_000_001


def config_as_json(config: SbpsConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def shown(config: SbpsConfig) -> dict[str, Any]:
    """The configuration with the hash key said to be set, never shown."""
    view = config_as_json(config)
    view["hash_key"] = "***" if config.hash_key else ""
    return view


def config_from_env(env: Mapping[str, str], *, tracking_start: int | None = None) -> SbpsConfig:
    """Standalone configuration from SBPS_SANDBOX_* variables."""
    config = SbpsConfig()
    for name, attr in (
        ("SBPS_SANDBOX_MERCHANT_ID", "merchant_id"),
        ("SBPS_SANDBOX_SERVICE_ID", "service_id"),
        ("SBPS_SANDBOX_HASH_KEY", "hash_key"),
        ("SBPS_SANDBOX_PUBLIC_BASE_URL", "public_base_url"),
    ):
        if env.get(name, "").strip():
            setattr(config, attr, env[name].strip())
    if env.get("SBPS_SANDBOX_TOKEN_TTL_SECONDS", "").strip():
        config.token_ttl_seconds = int(env["SBPS_SANDBOX_TOKEN_TTL_SECONDS"])
    if tracking_start is not None:
        config.tracking_start = tracking_start
    return config
