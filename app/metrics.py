"""Prometheus metrics the service exports (names are part of the ops contract).

Labels are low-cardinality on purpose: operations, outcomes, statuses, route templates -
never ids. Counters and histograms are per process; the `rp_db_*` gauges describe the shared
database and are refreshed at scrape time (cached briefly so a busy scraper cannot load it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import timedelta

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import utcnow
from app.gateway.base import GatewayCall
from app.kickbacks.models import Kickback
from app.payments.models import PAYMENT_STATUSES, Payment

GATEWAY_CALLS = Counter(
    "rp_gateway_calls_total", "Gateway calls by operation and outcome", ["operation", "outcome"]
)
GATEWAY_LATENCY = Histogram(
    "rp_gateway_call_seconds",
    "Gateway call latency by operation and outcome",
    ["operation", "outcome"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
HTTP_REQUESTS = Histogram(
    "rp_http_request_seconds",
    "HTTP requests by method, route template and status class",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PAYMENT_TRANSITIONS = Counter(
    "rp_payment_transitions_total", "Payment status changes", ["from_status", "to_status"]
)
KICKBACKS_RECEIVED = Counter(
    "rp_kickbacks_received_total",
    "Kickbacks received, by where they went first (stored, spooled, lost, over_budget)",
    ["result"],
)
KICKBACKS_APPLIED = Counter(
    "rp_kickbacks_processed_total",
    "Kickbacks processed, by final status (applied, duplicate, unmatched, flagged...)",
    ["status"],
)
KICKBACK_SEARCHES = Counter(
    "rp_kickback_verify_searches_total",
    "Charges-search look-ups for kickback verification (called, cached, over_budget)",
    ["result"],
)
KICKBACKS_REPLAYED = Counter(
    "rp_kickbacks_spool_replayed_total", "Kickbacks moved from the local spool to the database"
)
IDEMPOTENCY = Counter(
    "rp_idempotency_requests_total",
    "Requests with an Idempotency-Key by result (new, replayed, conflict, mismatch)",
    ["result"],
)
BODY_REFUSED = Histogram(
    "rp_http_body_refused_bytes",
    "Request bodies refused or cut (too_large: 413, timeout: 408): bytes read of each",
    ["reason"],
    buckets=(0, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024, 16 * 1024 * 1024),
)
VELOCITY_REJECTIONS = Counter(
    "rp_velocity_rejections_total", "Pay attempts refused by card-testing limits", ["scope"]
)
RECONCILE_RESULTS = Counter(
    "rp_reconcile_results_total", "Reconciliation checks by result", ["result"]
)
ORPHAN_CHARGES = Counter(
    "rp_orphan_charges_total",
    "Successful charges in the gateway's records that no payment of ours made (flagged)",
)
ORPHAN_SWEEP_WINDOWS = Counter(
    "rp_orphan_sweep_windows_total", "Windows of the gateway's records the orphan sweep searched"
)

DB_PAYMENTS = Gauge("rp_db_payments", "Payments in the database by status", ["status"])
DB_UNKNOWN = Gauge("rp_db_payments_unknown", "Payments whose outcome is unknown")
DB_STALE_PENDING = Gauge(
    "rp_db_payments_stale_pending", "Payments pending for longer than the stale threshold"
)
DB_NEEDS_ATTENTION = Gauge(
    "rp_db_payments_needs_attention", "Payments flagged for a person (reconciliation gave up)"
)
DB_JANITOR_LAG = Gauge(
    "rp_db_janitor_lag_seconds", "How overdue the most overdue reconciliation check is"
)
DB_KICKBACK_BACKLOG = Gauge(
    "rp_db_kickbacks_unprocessed", "Kickbacks stored but not yet applied (received or error)"
)
DB_KICKBACK_LAG = Gauge(
    "rp_db_kickback_lag_seconds", "Age of the oldest stored kickback not yet applied"
)
DB_SCRAPE_ERRORS = Counter(
    "rp_db_metrics_errors_total", "Scrapes where the database gauges could not be refreshed"
)

STALE_PENDING_AFTER = timedelta(minutes=10)


def observe_gateway_call(call: GatewayCall) -> None:
    outcome = str(call.outcome)
    GATEWAY_CALLS.labels(call.operation, outcome).inc()
    GATEWAY_LATENCY.labels(call.operation, outcome).observe(call.latency_ms / 1000)


def observe_transition(from_status: str, to_status: str) -> None:
    PAYMENT_TRANSITIONS.labels(from_status, to_status).inc()


@dataclass
class DbGauges:
    """Refreshes the database gauges at most once per `ttl` seconds."""

    ttl: float = 10.0
    _last: float = field(default=-1e9)

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        if time.monotonic() - self._last < self.ttl:
            return
        self._last = time.monotonic()
        try:
            await self._read(sessions)
        except Exception:  # the database being down must not break /metrics
            DB_SCRAPE_ERRORS.inc()

    @staticmethod
    async def _read(sessions: async_sessionmaker[AsyncSession]) -> None:
        now = utcnow()
        async with sessions() as session:
            counts = dict(
                (
                    await session.execute(
                        select(Payment.status, func.count()).group_by(Payment.status)
                    )
                ).all()
            )
            stale = await session.scalar(
                select(func.count()).where(
                    Payment.status == "pending", Payment.created_at < now - STALE_PENDING_AFTER
                )
            )
            attention = await session.scalar(
                select(func.count()).where(Payment.needs_attention.is_(True))
            )
            oldest_due = await session.scalar(
                select(func.min(Payment.next_check_at)).where(
                    Payment.status.in_(("pending", "unknown")),
                    Payment.needs_attention.is_(False),
                    Payment.next_check_at <= now,
                )
            )
            backlog, oldest_kb = (
                await session.execute(
                    select(func.count(), func.min(Kickback.received_at)).where(
                        Kickback.status.in_(("received", "error"))
                    )
                )
            ).one()
        for status in PAYMENT_STATUSES:
            DB_PAYMENTS.labels(status).set(counts.get(status, 0))
        DB_UNKNOWN.set(counts.get("unknown", 0))
        DB_STALE_PENDING.set(stale or 0)
        DB_NEEDS_ATTENTION.set(attention or 0)
        DB_JANITOR_LAG.set((now - oldest_due).total_seconds() if oldest_due else 0)
        DB_KICKBACK_BACKLOG.set(backlog or 0)
        DB_KICKBACK_LAG.set((now - oldest_kb).total_seconds() if oldest_kb else 0)


class MetricsMiddleware:
    """Pure ASGI: times every HTTP request under its route template (never the raw path,
    which would carry ids)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_see(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_see)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            HTTP_REQUESTS.labels(scope["method"], template, f"{status // 100}xx").observe(
                time.perf_counter() - started
            )
