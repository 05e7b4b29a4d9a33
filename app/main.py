"""create_app(): settings, lifespan resources, routers, problem+json handlers, static files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

import httpx
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from opentelemetry.sdk.trace import TracerProvider
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import crash, health, instance, schema, tracing
from app.billing import router as billing_router
from app.body_limits import BodyLimitMiddleware
from app.checkout import api as checkout_api
from app.checkout import pages as checkout_pages
from app.checkout import pay_api as checkout_pay_api
from app.checkout import service as checkout_service
from app.checkout.kickback_cards import KickbackCards
from app.config import (
    ROOT,
    SANDBOX_API_KEYS,
    SANDBOX_MOUNT,
    SANDBOX_SBPS_MOUNT,
    Settings,
    get_settings,
)
from app.customers import onetouch_router
from app.customers import router as customers_router
from app.db import make_engine, make_sessionmaker
from app.docs import install_docs
from app.errors import install_error_handlers
from app.events import gauges as event_gauges
from app.events import outbox
from app.events import router as events_router
from app.events.dispatch import Dispatcher, DispatchSettings
from app.events.secrets import SecretBox
from app.gateway import build_billing_robo, build_gateway, make_http_client, page_messages
from app.gateway.audit import DbCallRecorder
from app.gateway.base import BillingRobo, GatewayCall, PaymentGateway
from app.gateway.http import POOL_LIMITS
from app.input_guard import NulGuardMiddleware
from app.kickbacks import gauges as kickback_gauges
from app.kickbacks import router as kickback_router
from app.kickbacks import service as kickbacks
from app.kickbacks.limits import IntakeBudget, Verifier
from app.kickbacks.trust import secret_path
from app.logging import RequestIdMiddleware, setup_logging
from app.metrics import DbGauges, MetricsMiddleware, observe_gateway_call
from app.openapi import install_openapi
from app.ops import pages as ops_pages
from app.ops import scripts as ops_scripts
from app.pagesec import gauges as pagesec_gauges
from app.pagesec import headercheck, watcher
from app.pagesec import router as csp_reports_router
from app.payments import gauges as payment_gauges
from app.payments import router as payments_router
from app.payments.models import Payment
from app.payments.refresh import Refresh
from app.reconcile import charges_router, orphans
from app.reconcile import passes as reconcile_passes
from app.reconcile import router as reconcile_router
from app.reconcile import service as reconcile
from app.security_headers import SecurityHeadersMiddleware
from app.web import html_error_page
from app.web import theme as web_theme

log = logging.getLogger("app")

# Host name used for in-process (ASGI) traffic between the app and the mounted simulator.
_INTERNAL_SANDBOX = "http://sandbox.internal"
_INTERNAL_APP = "http://app.internal"
# ... and between the app and the mounted SBPS simulator (GATEWAY_PROVIDER=sbps).
_INTERNAL_SBPS = "http://sbps.internal"


def load_settings() -> Settings:
    """Settings, or a clear message and exit code 2 instead of a traceback."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(str(e.get("msg", e)) for e in exc.errors())
        print(f"configuration error: {problems}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


class _Recorder:
    """Audit-logs every gateway call and feeds the metrics; never fails the caller."""

    def __init__(self, db: DbCallRecorder) -> None:
        self._db = db

    async def __call__(self, call: GatewayCall) -> None:
        observe_gateway_call(call.operation, str(call.outcome), call.latency_ms / 1000)
        log.info(
            "gateway %s %s in %.0f ms%s",
            call.operation,
            call.outcome,
            call.latency_ms,
            f" ({call.error_code})" if call.error_code else "",
            extra={
                "event": "gateway_call",
                "operation": call.operation,
                "outcome": str(call.outcome),
                "latency_ms": round(call.latency_ms, 1),
                "http_status": call.http_status,
                "error_code": call.error_code,
                "ref": call.ref,
            },
        )
        await self._db(call)


def make_gateway(
    settings: Settings,
    http: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    base_url: str,
    search_url: str,
) -> PaymentGateway:
    """The one gateway client of a process (the app's lifespan, the CLI), auditing its calls."""
    recorder = _Recorder(DbCallRecorder(sessions))
    return build_gateway(
        settings, http, recorder=recorder, base_url=base_url, search_url=search_url
    )


def make_billing_robo(
    settings: Settings,
    http: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    base_url: str,
) -> BillingRobo | None:
    """The billing-robo client, or None when it is not configured (live without a URL)."""
    recorder = _Recorder(DbCallRecorder(sessions))
    return build_billing_robo(settings, http, recorder=recorder, base_url=base_url)


def _banner(settings: Settings) -> None:
    """Where to go next, at start: the demo shop, the API docs, the simulator."""
    base = settings.public_base_url.rstrip("/")
    if settings.gateway_mode != "sandbox":
        log.warning("LIVE mode. API docs at %s/docs", base)
        return
    sandbox = (
        f"{base}{SANDBOX_MOUNT}/" if settings.sandbox_in_process else settings.gateway_base_url
    )
    if settings.gateway_provider == "sbps":
        # The simulator the payments go to: SBPS's (in-process, or SBPS_API_URL's).
        sandbox = (
            f"{base}{SANDBOX_SBPS_MOUNT}/" if settings.sbps_in_process else (settings.sbps_api_root)
        )
    log.warning(
        "SANDBOX mode: payments go to the built-in simulator, nothing is charged. "
        "Demo shop %s/ | API docs %s/docs | simulator %s",
        base,
        base,
        sandbox,
    )
    if settings.api_keys.get_secret_value() == SANDBOX_API_KEYS:
        log.warning("sandbox API keys (never use them live): %s", SANDBOX_API_KEYS)


def _refresher(settings: Settings) -> Refresh:
    async def refresh_payment(
        sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, payment_id: str
    ) -> Payment | None:
        return await reconcile.settled(sessions, gateway, payment_id, pay_claim=settings.pay_claim)

    return refresh_payment


def _sandbox_app(settings: Settings) -> FastAPI | None:
    """The simulator, mounted in this process in sandbox mode (else None)."""
    if not settings.sandbox_in_process:
        return None
    from app.sandbox import SandboxConfig, create_sandbox_app
    from app.sandbox.config import time_based_gid_start

    return create_sandbox_app(
        SandboxConfig(
            aid=settings.gateway_aid,
            search_api_key=settings.search_api_key.get_secret_value(),
            allowed_ips=settings.sandbox_allowed_ip_list,
            # The trusted path, as a live shop registers it as 決済結果通知URL.
            kickback_url=f"{_INTERNAL_APP}{secret_path(settings)}",
            gid_start=time_based_gid_start(),
            billing_robo_user_id=settings.billing_robo_user_id,
            billing_robo_access_key=settings.billing_robo_access_key.get_secret_value(),
            # The in-process gateway checks the code our client sends, as a shop that set it.
            connection_auth_code=settings.gateway_connection_auth_code.get_secret_value(),
        )
    )


def _sbps_sandbox_app(settings: Settings) -> FastAPI | None:
    """The SBPS simulator, mounted in this process in sandbox mode with SBPS (else None);
    it knows the merchant by the same ids and hash key the app sends."""
    if not settings.sbps_in_process:
        return None
    from app.sandbox.sbps import SbpsConfig, create_sbps_app

    return create_sbps_app(
        SbpsConfig(
            merchant_id=settings.sbps_merchant_id,
            service_id=settings.sbps_service_id,
            hash_key=settings.sbps_hash_key.get_secret_value(),
            # Its 3-D Secure page as the shopper's browser reaches it (TA02's redirect_url).
            public_base_url=settings.public_base_url.rstrip("/") + SANDBOX_SBPS_MOUNT,
        )
    )


class _ByHost(httpx.AsyncBaseTransport):
    """In sandbox mode: each in-process simulator by its internal host name, anything else
    (a standalone simulator, the network) through an ordinary pooled transport."""

    def __init__(self, routes: dict[str, httpx.AsyncBaseTransport]) -> None:
        self._routes = routes
        self._default = httpx.AsyncHTTPTransport(trust_env=False, limits=POOL_LIMITS)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._routes.get(request.url.host, self._default)
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        await self._default.aclose()


def _acquire_instance(settings: Settings) -> None:
    try:
        instance.acquire(settings.database_url)
    except instance.InstanceLocked as exc:
        log.error("refusing to start: %s", exc)
        raise


def _gateway_http(
    settings: Settings, sandbox_app: FastAPI | None, sbps_app: FastAPI | None = None
) -> httpx.AsyncClient:
    """The one HTTP client of the gateway clients (in sandbox mode it reaches the mounted
    simulators in process)."""
    # By host whenever one simulator runs in process: the other gateway may be a standalone
    # simulator (or the network) on the same client. (One ASGITransport alone took every
    # request, whatever its host: SBPS's calls to a standalone simulator reached the
    # in-process ROBOT PAYMENT one and all failed as HTTP errors.)
    routes: dict[str, httpx.AsyncBaseTransport] = {}
    if sbps_app is not None:
        routes[httpx.URL(_INTERNAL_SBPS).host] = httpx.ASGITransport(app=sbps_app)
    if sandbox_app is not None:
        routes[httpx.URL(_INTERNAL_SANDBOX).host] = httpx.ASGITransport(app=sandbox_app)
    transport = _ByHost(routes) if routes else None
    return make_http_client(settings, transport)


def _webhook_http(settings: Settings) -> httpx.AsyncClient:
    """The client deliveries go out with: straight to the shop (not the gateway's egress),
    no redirects followed (a redirect could point anywhere), no proxy from the environment."""
    timeout = settings.webhook_timeout_seconds
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
    )


def _connect_gateways(
    app: FastAPI,
    settings: Settings,
    sandbox_app: FastAPI | None,
    http: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The gateway and billing-robo clients on `app.state`."""
    if sandbox_app is not None:
        base_url, search_url = f"{_INTERNAL_SANDBOX}/", f"{_INTERNAL_SANDBOX}/api"
        # The simulator's kickbacks reach this very app without a network hop.
        sandbox_app.state.sim.config.kickback_transport = httpx.ASGITransport(app=app)
    else:
        base_url, search_url = settings.gateway_base_url, settings.search_api_url
    billing_url = settings.billing_robo_url or (
        f"{_INTERNAL_SANDBOX}/" if sandbox_app is not None else ""
    )
    if settings.gateway_provider == "sbps":
        base_url = f"{_INTERNAL_SBPS}/" if settings.sbps_in_process else settings.sbps_api_root
        search_url = ""  # SBPS has no charges search: the client looks charges up one by one
    app.state.gateway = make_gateway(settings, http, sessions, base_url, search_url)
    app.state.billing_robo = make_billing_robo(settings, http, sessions, billing_url)


async def _background(
    app: FastAPI,
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The kickback and reconciliation loops, once the schema is at head."""

    def report(state: schema.SchemaState) -> None:
        app.state.schema_problem = state.message if state.behind else None

    # The loops would fail on every pass against a schema that is not there yet.
    await schema.wait_for_head(engine, report=report)
    loops = [
        kickbacks.background_loop(
            sessions,
            app.state.gateway,
            settings.spool_dir,
            verifier=app.state.kickback_verifier,
            cards=app.state.kickback_cards,
            retention=kickbacks.Retention(
                settings.kickback_retention_days, settings.kickback_junk_retention_days
            ),
        )
    ]
    # Payment pages past their expiry: 'expired', and the shop is told.
    loops.append(checkout_service.expiry_loop(sessions))
    # The shop's events to its endpoints.
    loops.append(app.state.dispatcher.loop())
    if settings.script_watch_interval_seconds > 0:
        # Payment-page integrity: the gateway's scripts and our pages, one replica at a time.
        loops.append(
            watcher.loop(
                sessions,
                app.state.script_http,
                settings,
                pages=_page_checker(app, settings, sessions),
            )
        )
    if settings.reconcile_interval_seconds > 0:
        loops.append(
            reconcile_passes.background_loop(
                sessions,
                app.state.gateway,
                interval=settings.reconcile_interval_seconds,
                batch_size=settings.reconcile_batch_size,
                pay_claim=settings.pay_claim,
                sweep=_sweep_settings(settings, app.state.gateway),
            )
        )
    await asyncio.gather(*loops)


def _page_checker(
    app: FastAPI, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> watcher.PageChecker:
    async def check() -> list[watcher.PageResult]:
        return await headercheck.check_pages(sessions, app.state.page_http, settings)

    return check


def _sweep_settings(settings: Settings, gateway: PaymentGateway) -> orphans.SweepSettings | None:
    """The orphan sweep searches time windows: a gateway with no range search (SBPS looks
    charges up one by one) has nothing to sweep with, so it is off rather than failing."""
    if gateway.charge_search_limits.max_range <= timedelta(0):
        return None
    return orphans.SweepSettings.of(settings)


Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def _lifespan(
    settings: Settings,
    sandbox_app: FastAPI | None,
    tracer_provider: TracerProvider | None,
    sbps_app: FastAPI | None = None,
) -> Lifespan:
    """Start: the instance lock, the database, the gateway clients, the background loops;
    stop: the same, in reverse."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _acquire_instance(settings)
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        sessions = make_sessionmaker(engine)
        http = _gateway_http(settings, sandbox_app, sbps_app)
        if tracer_provider is not None:
            tracing.instrument_resources(tracer_provider, engine, http)
        app.state.engine = engine
        app.state.sessions = sessions
        app.state.http = http
        # The watcher fetches the gateway's scripts through the gateway calls' egress (same
        # proxy, timeouts, no environment proxies), and our own pages as a browser would.
        app.state.script_http = make_http_client(settings)
        app.state.page_http = headercheck.page_client(settings)
        _connect_gateways(app, settings, sandbox_app, http, sessions)
        webhook_http = _webhook_http(settings)
        dispatcher = Dispatcher(
            sessions, webhook_http, app.state.webhook_box, DispatchSettings.of(settings)
        )
        app.state.dispatcher = dispatcher
        outbox.on_commit(dispatcher.wake)
        _banner(settings)
        app.state.schema_problem = None
        loops = _background(app, settings, engine, sessions)
        task = asyncio.create_task(loops, name="background-loops")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            outbox.off_commit(dispatcher.wake)
            await webhook_http.aclose()
            await app.state.page_http.aclose()
            await app.state.script_http.aclose()
            await http.aclose()
            await engine.dispose()
            if tracer_provider is not None:
                tracer_provider.force_flush()

    return lifespan


def _install_state(app: FastAPI, settings: Settings) -> None:
    """What the requests read from `app.state` before the lifespan has run."""
    app.state.settings = settings
    # The provider's page-script messages (hosted.pages.card_form merges them per language).
    app.state.page_messages = page_messages(settings)
    # payments.refresh: what an idempotent retry runs to re-check its payment (payments sits
    # below reconcile, so the composition root hands it the judgement).
    app.state.refresh_payment = _refresher(settings)
    app.state.api_keys = settings.parsed_api_keys
    app.state.db_gauges = DbGauges(
        readers=(
            payment_gauges.read,
            kickback_gauges.read,
            event_gauges.read,
            pagesec_gauges.read,
        )
    )
    # Per process and bounded (app/kickbacks/limits.py).
    app.state.kickback_intake = IntakeBudget(
        settings.kickback_untrusted_per_source_per_minute, settings.kickback_untrusted_per_minute
    )
    app.state.kickback_verifier = Verifier(settings.kickback_verify_searches_per_minute)
    # CSP reports taken per client address and in all (app/pagesec/router.py).
    app.state.csp_report_budget = IntakeBudget(
        settings.csp_reports_per_client_per_minute, settings.csp_reports_per_minute
    )
    # kickbacks sits below checkout: the card an rt=0 pay registered is kept by checkout.
    app.state.kickback_cards = KickbackCards(read_back_after=settings.card_read_back_after)
    # Webhook signing secrets are kept encrypted with WEBHOOK_SECRET_KEY.
    app.state.webhook_box = SecretBox(settings.webhook_secret_key.get_secret_value())


def _install_middleware(app: FastAPI, settings: Settings) -> None:
    """Middleware, innermost first (Starlette runs the last added first)."""
    app.add_middleware(NulGuardMiddleware)
    # Before anything reads a body (the NUL guard, FastAPI, the key check after it); behind the
    # request id, metrics and security headers, which read none, so its 413/408 carry them.
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_body_bytes,
        timeout=settings.request_body_timeout_seconds,
        lenient={"/kickback": kickbacks.MAX_RAW},
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)
    # Added last so it runs first: the request id is set before anything else logs.
    app.add_middleware(RequestIdMiddleware)


def _install_routes(
    app: FastAPI,
    settings: Settings,
    sandbox_app: FastAPI | None,
    sbps_app: FastAPI | None = None,
) -> None:
    app.include_router(health.router)
    app.include_router(checkout_api.router)
    app.include_router(checkout_pages.router)
    app.include_router(checkout_pay_api.router)
    _include_front_door(app, settings)
    app.include_router(kickback_router.router)
    app.include_router(payments_router.router)
    app.include_router(reconcile_router.router)
    app.include_router(charges_router.router)
    app.include_router(onetouch_router.router)
    app.include_router(customers_router.router)
    app.include_router(billing_router.router)
    app.include_router(events_router.endpoints)
    app.include_router(events_router.events)
    app.include_router(ops_pages.router)
    app.include_router(ops_scripts.router)
    app.include_router(csp_reports_router.router)
    # Before the /static mount, which would answer its path (404) first.
    app.include_router(web_theme.router)
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    if sandbox_app is not None:
        app.mount(SANDBOX_MOUNT, sandbox_app, name="sandbox")
    if sbps_app is not None:
        # Serves com_sbps_system_token.js and its token endpoint from our own origin.
        app.mount(SANDBOX_SBPS_MOUNT, sbps_app, name="sandbox-sbps")


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """The app; `tracer_provider` overrides the OTEL_* environment (tests pass their own)."""
    settings = settings or load_settings()
    setup_logging(settings.log_level, settings.log_format)
    crash.arm(settings.gateway_mode)
    tracer_provider = tracer_provider or tracing.make_provider()
    sandbox_app = _sandbox_app(settings)
    sbps_app = _sbps_sandbox_app(settings)
    app = FastAPI(
        title="ROBOT PAYMENT merchant service",
        version="0.1.0",
        summary="Checkout, stored cards and payment operations on the ROBOT PAYMENT gateway.",
        lifespan=_lifespan(settings, sandbox_app, tracer_provider, sbps_app),
        docs_url=None,  # app/docs.py serves them from our origin, not a CDN
        redoc_url=None,
    )
    _install_state(app, settings)
    install_error_handlers(app, html_error_page)
    install_openapi(app)
    install_docs(app)
    _install_middleware(app, settings)
    _install_routes(app, settings, sandbox_app, sbps_app)
    if tracer_provider is not None:
        tracing.instrument_app(app, tracer_provider)
    return app


async def _to_docs() -> RedirectResponse:
    return RedirectResponse("/docs")


def _include_front_door(app: FastAPI, settings: Settings) -> None:
    """`/`: the simulator's demo shop in sandbox mode (live never loads the simulator), the
    API docs in live mode."""
    if settings.gateway_mode == "sandbox":
        from app.sandbox import demo_shop

        app.include_router(demo_shop.router(settings))
    else:
        app.add_api_route("/", _to_docs, include_in_schema=False)


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` builds the app on first access, so importing this module (tests,
    # alembic) never reads the environment or exits on a configuration error.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
