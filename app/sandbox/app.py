"""create_sandbox_app(): the simulator as a FastAPI app, mountable (`/sandbox`) or standalone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.docs import install_docs
from app.sandbox import (
    routes_billing,
    routes_browser,
    routes_carduser,
    routes_control,
    routes_ops,
    routes_payment,
    routes_search,
)
from app.sandbox.config import SandboxConfig
from app.sandbox.state import SimState


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    sim = SimState(config or SandboxConfig())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Only runs standalone (mounted apps get no lifespan): let queued kickbacks finish.
        yield
        await sim.drain()
        sim.stop_timers()

    app = FastAPI(
        title="ROBOT PAYMENT gateway simulator",
        summary="In-memory sandbox of credit.j-payment.co.jp and the charges search API.",
        version="0.1.0",
        docs_url=None,  # served from our origin below, not a CDN
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
        lifespan=lifespan,
    )
    install_docs(app, docs_url="/_sandbox/docs", redoc_url=None, assets_url="/_sandbox/docs-assets")
    app.state.sim = sim
    for module in (
        routes_browser,
        routes_payment,
        routes_carduser,
        routes_ops,
        routes_search,
        routes_control,
    ):
        app.include_router(module.router)
    app.include_router(routes_control.root_router)
    app.include_router(routes_billing.router)
    app.include_router(routes_billing.control)
    return app
