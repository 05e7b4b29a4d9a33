"""Security headers on everything we answer that is not one of our HTML pages.

The shopper's pages set their own strict set (app/checkout/router.py `security_headers`). API
answers (JSON, problem+json, text) get a restrictive one: never rendered as a document,
framed, cached or sniffed into something else. The mounted sandbox simulator stands in for
the gateway and is left as it is."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import SANDBOX_MOUNT

API_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
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
