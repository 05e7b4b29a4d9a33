"""`python -m app.sandbox [--host 127.0.0.1] [--port 8101]`: the simulator on its own, configured
from SANDBOX_AID, SANDBOX_ALLOWED_IPS, SANDBOX_KICKBACK_URL, SANDBOX_SEARCH_API_KEY,
SANDBOX_REQUIRE_3DS, SANDBOX_CONNECTION_AUTH_CODE and SANDBOX_BILLING_ROBO_USER_ID /
SANDBOX_BILLING_ROBO_ACCESS_KEY."""

from __future__ import annotations

import argparse
import os

import uvicorn

from app.sandbox.app import create_sandbox_app
from app.sandbox.config import config_from_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_sandbox_app(config_from_env(os.environ))
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
