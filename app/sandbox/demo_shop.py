"""The sandbox demo shop at `/`: one product and a form that opens a checkout page.

Mounted by app.main in sandbox mode only. It is a shop like any other: it opens the checkout
session through the public merchant API (in process, over ASGI, with the sandbox merchant
key from settings), so the simulator package never imports the checkout domain."""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.config import Settings
from app.events.signing import SIGNATURE_HEADER, verify
from app.sandbox import cards
from app.web import error_page, form_lang, lang_of, messages, render

log = logging.getLogger(__name__)

# Host name of the in-process call back into the app (never leaves the process).
_APP = "http://demo-shop.internal"
_JST = timezone(timedelta(hours=9))


@dataclass
class _Inbox:
    """The demo shop's own webhook endpoint: its secret (in memory: after a restart the shop
    rolls it to learn a new one) and the last events it received."""

    endpoint_id: str | None = None
    secret: str | None = None
    seen: set[str] = field(default_factory=set)
    received: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))

    async def register(self, client: httpx.AsyncClient, url: str, key: str) -> None:
        if self.secret is not None:
            return
        auth = {"Authorization": f"Bearer {key}"}
        listed = await client.get("/v1/webhook-endpoints", headers=auth)
        if listed.status_code != 200:
            return
        mine = [e for e in listed.json()["data"] if e["url"] == url]
        if mine:
            answer = await client.post(
                f"/v1/webhook-endpoints/{mine[0]['id']}/roll-secret",
                json={"overlap_hours": 0},
                headers=auth,
            )
        else:
            answer = await client.post(
                "/v1/webhook-endpoints",
                json={"url": url, "description": "sandbox demo shop"},
                headers=auth,
            )
        if answer.status_code in (200, 201):
            self.endpoint_id, self.secret = answer.json()["id"], answer.json()["secret"]
        else:
            log.warning("demo shop: its webhook endpoint was refused: %s", answer.text[:300])

    def take(self, header: str, body: bytes) -> bool:
        if self.secret is None or not verify(self.secret, header, body):
            return False
        event = json.loads(body)
        if event["id"] in self.seen:  # at least once: a repeat is answered and ignored
            return True
        self.seen.add(event["id"])
        self.received.appendleft(
            {
                "received_at": datetime.now(_JST).strftime("%Y-%m-%d %H:%M:%S"),
                "type": event["type"],
                "object_id": event["object_id"],
                "status": event["data"].get("status", ""),
            }
        )
        return True


def _order(settings: Settings, form: dict[str, str]) -> dict[str, object]:
    """The merchant API's CheckoutSessionCreate body for the demo form."""
    home = f"{settings.public_base_url.rstrip('/')}/"
    customer_id = form.get("customer_id") or None

    def amount(name: str, default: str) -> object:
        raw = form.get(name, default)
        return int(raw) if raw.lstrip("-").isdigit() else raw

    return {
        "amount": amount("amount", "1000"),
        "tax": amount("tax", "0"),
        "shipping": amount("shipping", "0"),
        "job": "AUTH" if form.get("job") == "AUTH" else "CAPTURE",
        "email": form.get("email") or "demo@example.com",
        "customer_id": customer_id,
        "save_card": bool(form.get("save_card")) and bool(customer_id),
        "success_url": home,
        "cancel_url": home,
    }


def router(settings: Settings) -> APIRouter:
    """The demo shop's routes (`GET /`, `POST /demo/checkout`) for a sandbox app."""
    shop = APIRouter(include_in_schema=False)
    inbox = _Inbox()
    hook_url = f"{settings.public_base_url.rstrip('/')}/demo/events"

    @shop.get("/", response_class=HTMLResponse)
    async def demo_shop(request: Request) -> Response:
        lang = lang_of(request)
        return render(
            settings,
            "demo.html",
            lang=lang,
            t=messages(lang),
            post_url="/demo/checkout",
            test_cards=cards.describe(),
        )

    @shop.post("/demo/checkout")
    async def demo_checkout(request: Request) -> Response:
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        key = settings.demo_api_key
        if key is None:
            return error_page(settings, form_lang(form), 503)
        transport = httpx.ASGITransport(app=request.app)
        async with httpx.AsyncClient(transport=transport, base_url=_APP) as client:
            # The shop hears of its orders by webhook, like a real one.
            await inbox.register(client, hook_url, key)
            answer = await client.post(
                "/v1/checkout/sessions",
                json=_order(settings, form),
                headers={"Authorization": f"Bearer {key}"},
            )
        if answer.status_code != 201:
            log.warning("demo shop: the order was refused: %s", answer.text[:300])
            status = answer.status_code if answer.status_code >= 500 else 422
            return error_page(settings, form_lang(form), status, None, "/")
        # The shopper's language goes with them to the checkout.
        suffix = "?lang=en" if form_lang(form) == "en" else ""
        return RedirectResponse(f"/checkout/{answer.json()['id']}{suffix}", status_code=303)

    @shop.post("/demo/events")
    async def demo_receive(request: Request) -> Response:
        body = await request.body()
        if not inbox.take(request.headers.get(SIGNATURE_HEADER, ""), body):
            return Response("bad signature", status_code=400)
        return Response("ok")

    @shop.get("/demo/events", response_class=HTMLResponse)
    async def demo_events(request: Request) -> Response:
        lang = lang_of(request)
        return render(
            settings, "demo_events.html", lang=lang, t=messages(lang), events=list(inbox.received)
        )

    return shop
