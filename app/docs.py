"""API docs served from our own origin: Swagger UI at `/docs`, ReDoc at `/redoc`.

FastAPI's own pages load both from a CDN (blank without internet) with an inline script. Here the
vendor files come from the `fastapi-offline` package, the start-up scripts are files of ours, and
the pages carry a CSP as strict as the checkout's: scripts, styles, images and requests only from
our origin (ReDoc's generated <style> elements carry a per-response nonce; its search runs in a
blob: worker)."""

from __future__ import annotations

import html
import secrets
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

_VENDOR = Path(fastapi_offline.__file__).resolve().parent / "static"
_OURS = Path(__file__).resolve().parent / "docs_assets"
# Only these names are served (no path from the request ever reaches the file system).
ASSETS: dict[str, Path] = {
    "swagger-ui-bundle.js": _VENDOR / "swagger-ui-bundle.js",
    "swagger-ui.css": _VENDOR / "swagger-ui.css",
    "redoc.standalone.js": _VENDOR / "redoc.standalone.js",
    "favicon.png": _VENDOR / "favicon.png",
    "swagger-init.js": _OURS / "swagger-init.js",
    "redoc-init.js": _OURS / "redoc-init.js",
}


def _csp(style_nonce: str | None = None) -> str:
    styles = f"'self' 'nonce-{style_nonce}'" if style_nonce else "'self'"
    return (
        f"default-src 'none'; script-src 'self'; style-src {styles}; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; worker-src blob:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def _headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def _page(title: str, assets: str, body: str, *, css: str = "") -> str:
    style = f'<link rel="stylesheet" href="{assets}/{css}">' if css else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="icon" type="image/png" href="{assets}/favicon.png">{style}</head>'
        f"<body>{body}</body></html>"
    )


def install_docs(
    app: FastAPI,
    *,
    docs_url: str = "/docs",
    redoc_url: str | None = "/redoc",
    assets_url: str = "/docs-assets",
) -> None:
    """Adds the docs pages and their files to `app` (created with docs_url=redoc_url=None)."""
    openapi_url = app.openapi_url or "/openapi.json"

    def _root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    @app.get(f"{assets_url}/{{name}}", include_in_schema=False)
    async def docs_asset(name: str) -> FileResponse:
        path = ASSETS.get(name)
        if path is None:
            raise HTTPException(404, "Not Found")
        return FileResponse(
            path,
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        assets = f"{root}{assets_url}"
        body = (
            f'<div id="swagger-ui" data-openapi-url="{root}{openapi_url}"></div>'
            f'<script src="{assets}/swagger-ui-bundle.js"></script>'
            f'<script src="{assets}/swagger-init.js"></script>'
        )
        page = _page(f"{app.title} - Swagger UI", assets, body, css="swagger-ui.css")
        return HTMLResponse(page, headers=_headers(_csp()))

    if redoc_url is None:
        return

    @app.get(redoc_url, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        assets = f"{root}{assets_url}"
        nonce = secrets.token_urlsafe(16)
        body = (
            f'<div id="redoc" data-openapi-url="{root}{openapi_url}"></div>'
            f'<script src="{assets}/redoc.standalone.js"></script>'
            f'<script src="{assets}/redoc-init.js" nonce="{nonce}"></script>'
        )
        page = _page(f"{app.title} - ReDoc", assets, body)
        return HTMLResponse(page, headers=_headers(_csp(nonce)))
