"""Every security header we send, in one place.

Our HTML pages (checkout, card pages, error pages: app/web) carry `page_headers`, a strict CSP
that lets in only us and the gateway's scripts. API answers (JSON, problem+json, text) get
`API_HEADERS` from the middleware: never rendered as a document, framed, cached or sniffed
into something else. The mounted sandbox simulator stands in for the gateway and is left as
it is."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import SANDBOX_MOUNT, Settings

API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def page_headers(settings: Settings) -> dict[str, str]:
    """Strict CSP for our HTML pages: scripts and XHR only from us and the gateway, images
    from us and the shop's logo origin (SHOP_LOGO_URL's, when not ours); never framed."""
    gw = settings.page_script_base
    origin = "" if gw.startswith("/") else "{0.scheme}://{0.netloc}".format(urlsplit(gw))
    src = f"'self' {origin}".strip()
    img = f"'self' data: {settings.shop_logo_origin}".strip()
    csp = (
        f"default-src 'none'; script-src {src}; connect-src {src}; style-src 'self'; "
        f"img-src {img}; font-src 'self'; frame-src {src}; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # The gateway checks the page origin on token creation: send the origin, nothing more.
        "Referrer-Policy": "strict-origin",
        "Cache-Control": "no-store",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


def console_headers(settings: Settings) -> dict[str, str]:
    """The ops console's pages: no script at all (forms and links only), never framed, never
    cached, no referrer to other sites (its URLs carry order ids and filters). Not
    `no-referrer`: with it browsers post forms with `Origin: null`, which the cross-site
    refusal must turn down."""
    return {
        **page_headers(settings),
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        ),
        "Referrer-Policy": "same-origin",
    }


# Static files may be cached and are loaded by our pages; they only must not be sniffed.
_STATIC = {"X-Content-Type-Options": "nosniff"}


class SecurityHeadersMiddleware:
    """Pure ASGI; adds each header only where the route did not set it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(SANDBOX_MOUNT + "/"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                html = headers.get("content-type", "").startswith("text/html")
                wanted = _STATIC if html or path.startswith("/static/") else API_HEADERS
                for name, value in wanted.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
