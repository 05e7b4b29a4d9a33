"""create_sbps_app(): the SBPS simulator as a FastAPI app, standalone or mounted in-process."""

from __future__ import annotations

from fastapi import FastAPI

from app.docs import install_docs
from app.sandbox.sbps import api, browser, control, tds_page
from app.sandbox.sbps.config import SbpsConfig
from app.sandbox.sbps.state import SbpsState


def create_sbps_app(config: SbpsConfig | None = None) -> FastAPI:
    app = FastAPI(
        title="SBPS (SoftBank Payment Service) simulator",
        summary="In-memory sandbox of the API type (xmlapi.do), the token scripts and 3-D Secure.",
        version="0.1.0",
        docs_url=None,  # served from our origin below, not a CDN
        openapi_url="/_sandbox/openapi.json",
        redoc_url=None,
    )
    install_docs(app, docs_url="/_sandbox/docs", redoc_url=None, assets_url="/_sandbox/docs-assets")
    app.state.sbps = SbpsState(config or SbpsConfig())
    for module in (api, browser, tds_page, control):
        app.include_router(module.router)
    app.include_router(control.root_router)
    return app
