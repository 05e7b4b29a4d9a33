"""Prometheus metrics the service exports (names are part of the ops contract).

Labels are low-cardinality on purpose: operations, outcomes, statuses, route templates -
never ids. Counters and histograms are per process; the `rp_db_*` gauges describe the shared
database and are refreshed at scrape time (cached briefly so a busy scraper cannot load it).

A leaf: it imports no domain and no gateway module (the domains import it), so the collectors
that read domain tables live with their domain and are handed to `DbGauges` by app.main.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import utcnow

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
CSP_REPORTS = Counter(
    "rp_csp_reports_total",
    "CSP violations reported by shoppers' browsers on the payment pages, by directive "
    "(a fixed set of directive names, else other)",
    ["directive"],
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

WEBHOOK_DELIVERIES = Counter(
    "rp_webhook_deliveries_total",
    "Event deliveries to the shop's endpoints by outcome (delivered, retry, failed = given up)",
    ["outcome"],
)
WEBHOOK_LATENCY = Histogram(
    "rp_webhook_delivery_seconds", "Time a shop's endpoint took to answer a delivery"
)

SCRIPT_CHECKS = Counter(
    "rp_script_checks_total",
    "Gateway script checks by script key and verdict (ok, changed, unapproved, fetch_failed)",
    ["key", "status"],
)
SCRIPT_CHANGES = Counter(
    "rp_script_changes_total",
    "Gateway scripts seen with a new hash that is not approved (one per new hash), by key",
    ["key"],
)
PAGE_CHECKS = Counter(
    "rp_page_checks_total",
    "Payment page header/script checks by page and result (ok, drift, fetch_failed)",
    ["page", "status"],
)
PAGE_DRIFTS = Counter(
    "rp_page_drifts_total",
    "Payment pages found drifting from their required headers or scripts (one per new drift)",
    ["page"],
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
DB_EVENT_BACKLOG = Gauge(
    "rp_db_event_deliveries_pending", "Event deliveries not yet made (due now or retrying)"
)
DB_EVENT_LAG = Gauge(
    "rp_db_event_delivery_lag_seconds", "Age of the oldest event delivery still pending"
)
DB_WEBHOOKS_FAILING = Gauge(
    "rp_db_webhook_endpoints_failing", "Webhook endpoints marked failing (a delivery given up)"
)
DB_SCRIPTS_UNAPPROVED = Gauge(
    "rp_db_scripts_unapproved", "Gateway scripts whose current hash no person approved"
)
DB_SCRIPT_WATCH_AGE = Gauge(
    "rp_db_script_watch_age_seconds",
    "Time since the last script watcher pass finished (any replica); 0 before the first",
)
DB_SCRAPE_ERRORS = Counter(
    "rp_db_metrics_errors_total", "Scrapes where the database gauges could not be refreshed"
)


def observe_gateway_call(operation: str, outcome: str, seconds: float) -> None:
    GATEWAY_CALLS.labels(operation, outcome).inc()
    GATEWAY_LATENCY.labels(operation, outcome).observe(seconds)


def observe_transition(from_status: str, to_status: str) -> None:
    PAYMENT_TRANSITIONS.labels(from_status, to_status).inc()


# Sets some of the `rp_db_*` gauges from the database, given one session and the time of the
# scrape; the domains own theirs (app/payments/gauges.py, app/kickbacks/gauges.py), so this
# module needs none of their tables. Never commits.
GaugeReader = Callable[[AsyncSession, datetime], Awaitable[None]]


@dataclass
class DbGauges:
    """Refreshes the database gauges at most once per `ttl` seconds, all `readers` in one
    session."""

    readers: Sequence[GaugeReader] = ()
    ttl: float = 10.0
    _last: float = field(default=-1e9)

    async def refresh(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        if time.monotonic() - self._last < self.ttl:
            return
        self._last = time.monotonic()
        try:
            now = utcnow()
            async with sessions() as session:
                for read in self.readers:
                    await read(session, now)
        except Exception:  # the database being down must not break /metrics
            DB_SCRAPE_ERRORS.inc()


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
