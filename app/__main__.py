"""Command line: `python -m app <command>`. Reads the same settings as the server.

python -m app reconcile [--due-only] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from app.config import Settings


def _print(text: str) -> None:
    print(text, flush=True)  # noqa: T201  (a CLI's output)


async def _reconcile(settings: Settings, *, due_only: bool, limit: int) -> int:
    from app.db import make_engine, make_sessionmaker
    from app.gateway.robotpayment import make_http_client
    from app.main import make_gateway
    from app.reconcile.service import reconcile_due

    if settings.sandbox_in_process:
        _print(
            "reconcile: the in-process sandbox lives inside the server process, so there is no "
            "gateway ledger to ask from here. Set GATEWAY_BASE_URL (e.g. a simulator started "
            "with `python -m app.sandbox`) or use POST /v1/reconciliations on the server."
        )
        return 2
    engine = make_engine(settings.database_url, pool_size=2)
    http = make_http_client(
        connect_timeout=settings.gateway_connect_timeout,
        read_timeout=settings.gateway_read_timeout,
        proxy=settings.gateway_proxy or None,
    )
    try:
        sessions = make_sessionmaker(engine)
        gateway = make_gateway(
            settings, http, sessions, settings.gateway_base_url, settings.search_api_base_url
        )
        _print(f"reconcile: checking {'due' if due_only else 'all open'} payments (max {limit})")
        summary = await reconcile_due(sessions, gateway, limit=limit, all_open=not due_only)
    finally:
        await http.aclose()
        await engine.dispose()
    for check in summary.results:
        note = f" ({check.note})" if check.note else ""
        _print(
            f"  {check.payment_id}: {check.result} {check.from_status} -> {check.to_status}{note}"
        )
    _print(
        f"reconcile: {summary.checked} checked, {summary.settled} settled, "
        f"{summary.confirmed} confirmed, {summary.rescheduled} rescheduled, "
        f"{summary.flagged} flagged, {summary.skipped} skipped, {summary.errors} errors"
    )
    return 1 if summary.errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser(
        "reconcile", help="settle unknown/pending payments from the gateway's charges search now"
    )
    rec.add_argument(
        "--due-only", action="store_true", help="only payments whose next check is due"
    )
    rec.add_argument("--limit", type=int, default=500, help="at most this many payments")
    args = parser.parse_args(argv)

    from app.logging import setup_logging
    from app.main import load_settings

    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    if args.command == "reconcile":
        return asyncio.run(_reconcile(settings, due_only=args.due_only, limit=args.limit))
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
