"""Command line: `python -m app <command>`. Reads the same settings as the server.

migrate                     bring the database schema up to date (alembic upgrade head)
serve [--host H --port P]   run the service (uvicorn, one process; scale with replicas)
reconcile [--due-only]      settle unknown/pending payments from the charges search now
replay-spool                move kickbacks spooled during a database outage into the inbox
create-api-key --role R     make a new API key to add to API_KEYS
show-payment ID [--json]    a payment with its events and gateway calls
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import ROOT, Settings
from app.gateway.robotpayment import RobotPaymentClient

_NO_GATEWAY = (
    "the in-process sandbox lives inside the server process, so there is no gateway to ask "
    "from here. Set GATEWAY_BASE_URL (e.g. a simulator started with `python -m app.sandbox`) "
    "or use the server's API."
)


def _print(text: str) -> None:
    print(text, flush=True)  # noqa: T201  (a CLI's output)


@dataclass
class _Resources:
    sessions: async_sessionmaker[AsyncSession]
    gateway: RobotPaymentClient | None


@asynccontextmanager
async def _resources(settings: Settings, *, gateway: bool) -> AsyncIterator[_Resources]:
    from app.db import make_engine, make_sessionmaker
    from app.gateway.robotpayment import make_http_client
    from app.main import make_gateway

    engine = make_engine(settings.database_url, pool_size=2)
    http: httpx.AsyncClient | None = None
    try:
        sessions = make_sessionmaker(engine)
        client = None
        if gateway and not settings.sandbox_in_process:
            http = make_http_client(
                connect_timeout=settings.gateway_connect_timeout,
                read_timeout=settings.gateway_read_timeout,
                proxy=settings.gateway_proxy or None,
            )
            client = make_gateway(
                settings, http, sessions, settings.gateway_base_url, settings.search_api_url
            )
        yield _Resources(sessions, client)
    finally:
        if http is not None:
            await http.aclose()
        await engine.dispose()


# --- commands ----------------------------------------------------------------------------------


def migrate(settings: Settings) -> int:
    from alembic import command
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = settings.database_url
    _print("migrate: upgrading the schema to head ...")
    command.upgrade(config, "head")
    _print("migrate: done")
    return 0


def serve(settings: Settings, host: str, port: int) -> int:
    import uvicorn

    # X-Forwarded-For only from FORWARDED_ALLOW_IPS, and not at all by default (uvicorn's own
    # default would believe it from any local process).
    trusted = settings.trusted_proxies
    uvicorn.run(
        "app.main:app",
        host=host,
        port=port,
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
    )
    return 0


async def reconcile(settings: Settings, *, due_only: bool, limit: int) -> int:
    from app.reconcile.service import PaymentCheck, reconcile_due

    if settings.sandbox_in_process:
        _print(f"reconcile: {_NO_GATEWAY}")
        return 2
    done = 0

    def progress(check: PaymentCheck) -> None:
        nonlocal done
        done += 1
        note = f" ({check.note})" if check.note else ""
        _print(
            f"  [{done}] {check.payment_id}: {check.result} "
            f"{check.from_status} -> {check.to_status}{note}"
        )

    async with _resources(settings, gateway=True) as res:
        assert res.gateway is not None
        _print(f"reconcile: checking {'due' if due_only else 'all open'} payments (max {limit})")
        summary = await reconcile_due(
            res.sessions, res.gateway, limit=limit, all_open=not due_only, on_check=progress
        )
    _print(
        f"reconcile: {summary.checked} checked, {summary.settled} settled, "
        f"{summary.confirmed} confirmed, {summary.rescheduled} rescheduled, "
        f"{summary.flagged} flagged, {summary.skipped} skipped, {summary.errors} errors"
    )
    return 1 if summary.errors else 0


async def replay_spool(settings: Settings) -> int:
    from app.kickbacks import service as kickbacks

    async with _resources(settings, gateway=True) as res:
        _print(f"replay-spool: reading {settings.spool_dir}")
        moved = await kickbacks.replay_spool(
            res.sessions,
            res.gateway,
            settings.spool_dir,
            trusted_ips=settings.kickback_allowed_ip_list,
            on_stored=lambda n: _print(f"  {n} stored") if n % 100 == 0 else None,
        )
    where = "applied" if res.gateway else "stored; the running server applies them"
    _print(f"replay-spool: {moved} kickbacks moved into the inbox ({where})")
    return 0


def create_api_key(role: str) -> int:
    from app.config import parse_api_keys

    secret = f"sk_{secrets.token_urlsafe(32)}"
    entry = f"{secret}:{role}"
    [key] = parse_api_keys(entry)  # the same rules the server applies
    _print(entry)
    _print(
        "create-api-key: add this entry to API_KEYS (comma-separated) in the environment of "
        "every replica and restart them; it is shown only now and never stored by us. "
        f"Logs and audit rows name it {role}:{key.label}.",
    )
    return 0


async def show_payment(settings: Settings, payment_id: str, *, as_json: bool) -> int:
    from app.payments import service as payments
    from app.payments.models import Payment
    from app.payments.schemas import PaymentDetail

    async with _resources(settings, gateway=False) as res, res.sessions() as session:
        payment = await session.get(Payment, payment_id)
        if payment is None:
            _print(f"show-payment: no payment {payment_id!r}")
            return 1
        events, calls = await payments.payment_trail(session, payment_id)
        detail = PaymentDetail.build(payment, events, calls)
    if as_json:
        _print(detail.model_dump_json(indent=2))
        return 0
    _print(
        f"{detail.id}  {detail.status}  {detail.kind} {detail.job}  total {detail.total} yen"
        f"  order {detail.order_id or '-'}  gid {detail.gid or '-'}"
    )
    if detail.error_code:
        _print(f"  error {detail.error_code}: {detail.error_message}")
    if detail.needs_attention:
        _print("  NEEDS ATTENTION")
    _print("events:")
    for e in detail.events:
        move = f"{e.from_status or ''} -> {e.to_status}" if e.to_status else ""
        why = f" ({e.reason})" if e.reason else ""
        _print(f"  {e.created_at:%Y-%m-%d %H:%M:%S} {e.type} {move} by {e.actor or '-'}{why}")
    _print("gateway calls:")
    for c in detail.gateway_calls:
        _print(
            f"  {c.started_at:%Y-%m-%d %H:%M:%S} {c.operation} {c.outcome}"
            f" {c.error_code or ''} {c.latency_ms:.0f} ms  request {json.dumps(c.request)}"
        )
    return 0


# --- parsing -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m app",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("migrate", help="bring the database schema up to date")
    srv = commands.add_parser("serve", help="run the service")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    rec = commands.add_parser(
        "reconcile", help="settle unknown/pending payments from the gateway's charges search now"
    )
    rec.add_argument(
        "--due-only", action="store_true", help="only payments whose next check is due"
    )
    rec.add_argument("--limit", type=int, default=500, help="at most this many payments")
    commands.add_parser("replay-spool", help="move spooled kickbacks into the inbox")
    key = commands.add_parser("create-api-key", help="make a new API key for API_KEYS")
    key.add_argument("--role", choices=("merchant", "ops"), required=True)
    show = commands.add_parser("show-payment", help="a payment with its trail")
    show.add_argument("payment_id")
    show.add_argument("--json", action="store_true", help="the API's JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "create-api-key":
        return create_api_key(args.role)  # needs no settings: works before any are made
    from app.logging import setup_logging
    from app.main import load_settings

    settings = load_settings()
    if args.command == "serve":
        return serve(settings, args.host, args.port)
    setup_logging(settings.log_level, settings.log_format)
    match args.command:
        case "migrate":
            return migrate(settings)
        case "reconcile":
            return asyncio.run(reconcile(settings, due_only=args.due_only, limit=args.limit))
        case "replay-spool":
            return asyncio.run(replay_spool(settings))
        case "show-payment":
            return asyncio.run(show_payment(settings, args.payment_id, as_json=args.json))
    return 2


if __name__ == "__main__":
    sys.exit(main())
