"""`python -m app.sandbox.sbps [--host 127.0.0.1] [--port 8102]`: the SBPS simulator on its own,
configured from SBPS_SANDBOX_MERCHANT_ID, SBPS_SANDBOX_SERVICE_ID, SBPS_SANDBOX_HASH_KEY,
SBPS_SANDBOX_PUBLIC_BASE_URL and SBPS_SANDBOX_TOKEN_TTL_SECONDS."""

from __future__ import annotations

import argparse
import os
import time

import uvicorn

from app.sandbox.sbps.app import create_sbps_app
from app.sandbox.sbps.config import config_from_env


def time_based_tracking_start() -> int:
    """Above every tracking_id an earlier run could have issued (unless it made more than 1,000
    authorizations a second): a restarted simulator never repeats one a database holds."""
    return 10**13 + (int(time.time()) - 1_600_000_000) * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.sandbox.sbps", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8102)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    config = config_from_env(os.environ, tracking_start=time_based_tracking_start())
    uvicorn.run(create_sbps_app(config), host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
