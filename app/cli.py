"""Command line: `scripts/app <command>` (or `python -m app` with the project's virtualenv).
Reads the same settings as the server.

migrate                     bring the database schema up to date (alembic upgrade head)
serve [--host H --port P]   run the service (uvicorn, one process; scale with replicas);
                            refuses to start (exit 3) on a schema behind the head
reconcile [--due-only]      settle unknown/pending payments from the charges search now (with
                            the in-process sandbox: asks the running server to do it)
replay-spool                move kickbacks spooled during a database outage into the inbox
create-api-key --role R     make a new API key to add to API_KEYS
show-payment ID [--json]    a payment with its events and gateway calls
events list|show|redeliver  the shop's events and their deliveries (webhooks); a redelivery
                            is sent by the running servers' dispatchers
events rewrap-secrets       re-encrypt webhook secrets with WEBHOOK_SECRET_KEY's first key
scripts check|list|approve  payment-page integrity: one watcher pass now (the gateway's
                            scripts and our pages), where each script stands, approve a hash
pci-report [--out DIR]      PCI DSS 6.4.3 / 11.6.1 evidence: pci-report-YYYY-MM-DD.md + .json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.gateway.base import PaymentGateway
from app.schema import alembic_config  # first: it quiets alembic's import-time log lines

_NO_SERVER = (
    "the in-process sandbox lives inside the server process, so this command asks the running "
    "server (POST /v1/reconciliations), and none answers at {url}. Start it (scripts/serve; "
    "PORT=... or --server for another one), or set GATEWAY_BASE_URL to a standalone simulator "
    "(python -m app.sandbox)."
)


def _print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)  # noqa: T201  (a CLI's output)


def local_url(settings: Settings, host: str | None = None, port: int | None = None) -> str:
    """This machine's server: PUBLIC_BASE_URL when it is set, else HOST/PORT (or the given
    ones), so a second instance on another port names and finds its own address."""
    if "public_base_url" in settings.model_fields_set:
        return settings.public_base_url.rstrip("/")
    host = host or os.environ.get("HOST") or "127.0.0.1"
    port = port or int(os.environ.get("PORT") or 8000)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def _print(text: str) -> None:
    print(text, flush=True)  # noqa: T201  (a CLI's output)


@dataclass
class _Resources:
    sessions: async_sessionmaker[AsyncSession]
    gateway: PaymentGateway | None


@asynccontextmanager
async def _resources(settings: Settings, *, gateway: bool) -> AsyncIterator[_Resources]:
    from app.db import make_engine, make_sessionmaker
    from app.gateway import make_http_client
    from app.main import make_gateway

    engine = make_engine(settings.database_url, pool_size=2)
    http: httpx.AsyncClient | None = None
    try:
        sessions = make_sessionmaker(engine)
        client = None
        sbps = settings.gateway_provider == "sbps"
        in_process = settings.sbps_in_process if sbps else settings.sandbox_in_process
        if gateway and not in_process:
            http = make_http_client(settings)
            base_url = settings.sbps_api_root if sbps else settings.gateway_base_url
            client = make_gateway(settings, http, sessions, base_url, settings.search_api_url)
        yield _Resources(sessions, client)
    finally:
        if http is not None:
            await http.aclose()
        await engine.dispose()


# --- commands ----------------------------------------------------------------------------------


def migrate(settings: Settings) -> int:
    from alembic import command

    _print("migrate: upgrading the schema to head ...")
    command.upgrade(alembic_config(settings.database_url), "head")
    _print("migrate: done")
    return 0


async def _schema_problem(settings: Settings) -> str | None:
    """Why this database cannot be served, or None (also when it cannot be reached now: the
    server then starts unready and /readyz says why)."""
    from app import schema
    from app.db import database_unavailable, make_engine

    engine = make_engine(settings.database_url, pool_size=1)
    try:
        state = await schema.check(engine)
    except Exception as exc:
        return None if database_unavailable(exc) else f"cannot read the schema version: {exc}"
    finally:
        await engine.dispose()
    return state.message if state.behind else None


def serve(host: str | None, port: int | None) -> int:
    import uvicorn

    from app import instance
    from app.config import get_settings
    from app.logging import setup_logging
    from app.main import load_settings

    host = host or os.environ.get("HOST") or "127.0.0.1"
    port = port or int(os.environ.get("PORT") or 8000)
    settings = load_settings()
    if "public_base_url" not in settings.model_fields_set:
        # Checkout URLs and the start-up banner name the port this server really listens on.
        os.environ["PUBLIC_BASE_URL"] = local_url(settings, host, port)
        get_settings.cache_clear()
        settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    problem = asyncio.run(_schema_problem(settings))
    if problem is not None:
        _print_err(f"serve: refusing to start: {problem}")
        return 3
    try:
        instance.acquire(settings.database_url)  # held while uvicorn runs in this process
    except instance.InstanceLocked as exc:
        _print_err(f"serve: refusing to start: {exc}")
        return 3
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


def _ops_key(settings: Settings) -> str | None:
    """An ops secret from API_KEYS (the environment the server runs with)."""
    for item in settings.api_keys.get_secret_value().split(","):
        secret, _, role = item.strip().rpartition(":")
        if role == "ops" and secret:
            return secret
    return None


async def _reconcile_on_server(
    settings: Settings, server: str, *, due_only: bool, limit: int
) -> int:
    url = f"{server.rstrip('/')}/v1/reconciliations"
    key = _ops_key(settings)
    if key is None:
        _print("reconcile: API_KEYS has no ops key to ask the server with")
        return 2
    _print(f"reconcile: asking the server at {server} (the in-process sandbox lives there)")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # its one INFO line per request
    body = {"scope": "due" if due_only else "open", "limit": limit}
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=5)) as http:
            answer = await http.post(url, json=body, headers={"Authorization": f"Bearer {key}"})
    except httpx.TransportError:
        _print(f"reconcile: {_NO_SERVER.format(url=server)}")
        return 2
    if answer.status_code != 200:
        _print(f"reconcile: the server answered {answer.status_code}: {answer.text[:500]}")
        return 2
    summary = answer.json()
    for n, check in enumerate(summary["results"], 1):
        note = f" ({check['note']})" if check.get("note") else ""
        _print(
            f"  [{n}] {check['payment_id']}: {check['result']} "
            f"{check['from_status']} -> {check['to_status']}{note}"
        )
    _print(_summary_line(summary))
    return 1 if summary["errors"] else 0


def _summary_line(s: dict[str, Any]) -> str:
    return (
        f"reconcile: {s['checked']} checked, {s['settled']} settled, "
        f"{s['confirmed']} confirmed, {s['rescheduled']} rescheduled, "
        f"{s['flagged']} flagged, {s['skipped']} skipped, {s['errors']} errors"
    )


async def reconcile(
    settings: Settings, *, due_only: bool, limit: int, server: str | None = None
) -> int:
    from app.reconcile.service import PaymentCheck, reconcile_due

    if settings.sandbox_in_process:
        return await _reconcile_on_server(
            settings, server or local_url(settings), due_only=due_only, limit=limit
        )
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
            res.sessions,
            res.gateway,
            limit=limit,
            all_open=not due_only,
            on_check=progress,
            pay_claim=settings.pay_claim,
        )
    _print(_summary_line(summary.as_dict()))
    return 1 if summary.errors else 0


async def replay_spool(settings: Settings) -> int:
    from app.kickbacks import service as kickbacks
    from app.kickbacks.limits import Verifier

    async with _resources(settings, gateway=True) as res:
        _print(f"replay-spool: reading {settings.spool_dir}")
        moved = await kickbacks.replay_spool(
            res.sessions,
            res.gateway,
            settings.spool_dir,
            verifier=Verifier(settings.kickback_verify_searches_per_minute),
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


async def events(settings: Settings, args: argparse.Namespace) -> int:
    from app.errors import AppError
    from app.events import service
    from app.events.secrets import SecretBox

    async with _resources(settings, gateway=False) as res:
        try:
            match args.action:
                case "list":
                    rows, _ = await service.list_events(
                        res.sessions,
                        service.EventFilter(
                            type=args.type, object_id=args.object, limit=args.limit
                        ),
                    )
                    for e in rows:
                        _print(f"{e.created_at:%Y-%m-%d %H:%M:%S} {e.id}  {e.type}  {e.object_id}")
                    if not rows:
                        _print("events: none")
                case "show":
                    detail = await service.event_detail(res.sessions, args.event_id)
                    _print(detail.model_dump_json(indent=2))
                case "redeliver":
                    queued = await service.redeliver(res.sessions, args.event_id, args.endpoint)
                    _print(
                        f"events: {args.event_id} queued again to {queued} endpoint(s); the "
                        "running servers send it"
                    )
                case "rewrap-secrets":
                    box = SecretBox(settings.webhook_secret_key.get_secret_value())
                    count = await service.rewrap_secrets(res.sessions, box)
                    _print(f"events: {count} endpoint secret(s) re-encrypted")
        except AppError as exc:
            _print_err(f"events: {exc.detail or exc.title}")
            return 1
    return 0


def _page_settings(settings: Settings) -> Settings:
    """The settings with PUBLIC_BASE_URL as this machine's server names it (local_url)."""
    return settings.model_copy(update={"public_base_url": local_url(settings)})


async def _scripts_check(settings: Settings, res: _Resources) -> int:
    from app.gateway import make_http_client
    from app.pagesec import headercheck, watcher

    settings = _page_settings(settings)
    async with make_http_client(settings) as http, headercheck.page_client(settings) as pages:

        async def check() -> list[watcher.PageResult]:
            return await headercheck.check_pages(res.sessions, pages, settings)

        done = await watcher.run_pass(res.sessions, http, settings, pages=check)
    if not done.ran:
        _print_err("scripts: another replica is running a pass now; try again in a minute")
        return 3
    for r in done.scripts:
        shown = r.sha384 or r.error
        _print(f"{r.key:16} {r.status:13} {shown}  {r.url}")
    for p in done.pages:
        _print(f"page {p.page:11} {p.status:13} {'; '.join(p.problems) or p.error or ''}  {p.url}")
    bad = sum(r.status in watcher.BLOCKING for r in done.scripts)
    bad += sum(p.status == "drift" for p in done.pages)
    return 1 if bad else 0


async def scripts(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from app.pagesec import service

    async with _resources(settings, gateway=False) as res:
        match args.action:
            case "check":
                return await _scripts_check(settings, res)
            case "list":
                for row in await service.scripts(res.sessions, settings):
                    st = row.state
                    checked = (
                        f"{st.last_checked_at:%Y-%m-%d %H:%M:%S}"
                        if st and st.last_checked_at
                        else "-"
                    )
                    _print(
                        f"{row.script.key:16} {row.status:11} checked {checked}\n"
                        f"  url      {st.url if st else row.script.url}\n"
                        f"  current  {(st.current_sha384 if st else None) or '-'}\n"
                        f"  approved {(st.approved_sha384 if st else None) or '-'}"
                        + (
                            f"\n  fetch failures {st.fetch_failures}: {st.fetch_error}"
                            if st and st.fetch_failures
                            else ""
                        )
                    )
                return 0
            case "approve":
                by = args.by or f"cli:{getpass.getuser()}"
                try:
                    state = await service.approve(
                        res.sessions, settings, args.key, args.sha384, by=by, reason=args.reason
                    )
                except service.ApprovalRefused as exc:
                    _print_err(f"scripts: {exc}")
                    return 1
                _print(f"scripts: {args.key} approved by {by}; it is now {state.status}")
                return 0
    return 2


async def pci_report(settings: Settings, out: str) -> int:
    from pathlib import Path

    from app.pagesec import report

    async with _resources(settings, gateway=False) as res:
        md, js = await report.write(res.sessions, _page_settings(settings), Path(out))
    _print(f"pci-report: wrote {md} and {js}")
    return 0


# --- parsing -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/app",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    commands.add_parser("migrate", help="bring the database schema up to date")
    srv = commands.add_parser("serve", help="run the service")
    srv.add_argument("--host", help="default: HOST, else 127.0.0.1")
    srv.add_argument("--port", type=int, help="default: PORT, else 8000")
    rec = commands.add_parser(
        "reconcile", help="settle unknown/pending payments from the gateway's charges search now"
    )
    rec.add_argument(
        "--due-only", action="store_true", help="only payments whose next check is due"
    )
    rec.add_argument("--limit", type=int, default=500, help="at most this many payments")
    rec.add_argument(
        "--server",
        help="with the in-process sandbox: the running server to ask (default: "
        "PUBLIC_BASE_URL, else http://127.0.0.1:PORT)",
    )
    commands.add_parser("replay-spool", help="move spooled kickbacks into the inbox")
    key = commands.add_parser("create-api-key", help="make a new API key for API_KEYS")
    key.add_argument("--role", choices=("merchant", "ops"), required=True)
    show = commands.add_parser("show-payment", help="a payment with its trail")
    show.add_argument("payment_id")
    show.add_argument("--json", action="store_true", help="the API's JSON instead of text")
    ev = commands.add_parser("events", help="the shop's events and their deliveries")
    actions = ev.add_subparsers(dest="action", required=True, metavar="action")
    listing = actions.add_parser("list", help="newest first")
    listing.add_argument("--type", help="one event type, e.g. payment.captured")
    listing.add_argument("--object", help="a payment, session or card id")
    listing.add_argument("--limit", type=int, default=20)
    one = actions.add_parser("show", help="an event with its deliveries and attempts (JSON)")
    one.add_argument("event_id")
    again = actions.add_parser("redeliver", help="send an event again")
    again.add_argument("event_id")
    again.add_argument("--endpoint", help="only to this endpoint (we_...)")
    actions.add_parser("rewrap-secrets", help="after putting a new WEBHOOK_SECRET_KEY first")
    sc = commands.add_parser("scripts", help="payment-page integrity (the script watcher)")
    sc_actions = sc.add_subparsers(dest="action", required=True, metavar="action")
    sc_actions.add_parser("check", help="one pass now: fetch, hash, compare; exit 1 on a problem")
    sc_actions.add_parser("list", help="each gateway script's current and approved hash")
    ok = sc_actions.add_parser("approve", help="record that a person approved a script's hash")
    ok.add_argument("key", help="the script's key (scripts list), e.g. cptoken")
    ok.add_argument("sha384", help="sha384-<base64>, or 96 hex digits (sha384sum)")
    ok.add_argument("--reason", required=True, help="why these bytes may run on the pages")
    ok.add_argument("--by", help="who approves (default: cli:<login name>)")
    report = commands.add_parser("pci-report", help="PCI DSS 6.4.3 / 11.6.1 evidence files")
    report.add_argument("--out", default=".", help="the directory to write into (default: .)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "create-api-key":
        return create_api_key(args.role)  # needs no settings: works before any are made
    if args.command == "serve":
        return serve(args.host, args.port)

    from app.logging import setup_logging
    from app.main import load_settings

    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    match args.command:
        case "migrate":
            return migrate(settings)
        case "reconcile":
            return asyncio.run(
                reconcile(settings, due_only=args.due_only, limit=args.limit, server=args.server)
            )
        case "replay-spool":
            return asyncio.run(replay_spool(settings))
        case "show-payment":
            return asyncio.run(show_payment(settings, args.payment_id, as_json=args.json))
        case "events":
            return asyncio.run(events(settings, args))
        case "scripts":
            return asyncio.run(scripts(settings, args))
        case "pci-report":
            return asyncio.run(pci_report(settings, args.out))
    return 2


if __name__ == "__main__":
    sys.exit(main())
