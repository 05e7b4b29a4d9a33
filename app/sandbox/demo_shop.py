"""The sandbox demo shop at `/`: one product and a form that opens a checkout page.

Mounted by app.main in sandbox mode only. It is a shop like any other: it opens the checkout
session through the public merchant API (in process, over ASGI, with the sandbox merchant
key from settings), so the simulator package never imports the checkout domain."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.config import Settings
from app.sandbox import cards
from app.web import error_page, lang_of, messages, render

log = logging.getLogger(__name__)

# Host name of the in-process call back into the app (never leaves the process).
_APP = "http://demo-shop.internal"


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
            return error_page(settings, "ja", 503, "The demo shop has no merchant API key.")
        transport = httpx.ASGITransport(app=request.app)
        async with httpx.AsyncClient(transport=transport, base_url=_APP) as client:
            answer = await client.post(
                "/v1/checkout/sessions",
                json=_order(settings, form),
                headers={"Authorization": f"Bearer {key}"},
            )
        if answer.status_code != 201:
            detail = answer.json().get("detail") or "The order could not be placed."
            status = answer.status_code if answer.status_code >= 500 else 422
            return error_page(settings, "ja", status, str(detail), "/")
        return RedirectResponse(f"/checkout/{answer.json()['id']}", status_code=303)

    return shop
