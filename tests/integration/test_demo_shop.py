"""The sandbox demo shop (app/sandbox/demo_shop.py) opens its checkout page through the public
merchant API, as a real shop does; outside sandbox mode `/` is the API docs."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.config import Settings
from app.main import _include_front_door
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration


async def test_demo_checkout_opens_a_page_through_the_merchant_api(make_app: AppFactory) -> None:
    app = await make_app()
    shop = await app.client.get("/")
    assert shop.status_code == 200 and "4444" in shop.text
    ordered = await app.client.post(
        "/demo/checkout",
        data={"amount": "1000", "tax": "100", "shipping": "480", "job": "AUTH"},
        follow_redirects=False,
    )
    assert ordered.status_code == 303, ordered.text
    location = ordered.headers["location"]
    assert location.startswith("/checkout/cs_")
    cs = (await app.merchant.get(f"/v1/checkout/sessions/{location.rsplit('/', 1)[1]}")).json()
    assert (cs["amount"], cs["tax"], cs["shipping"], cs["total"]) == (1000, 100, 480, 1580)
    assert cs["job"] == "AUTH" and cs["kind"] == "payment"
    assert cs["status"] == "open"
    assert (await app.client.get(location)).status_code == 200

    refused = await app.client.post("/demo/checkout", data={"amount": "0"})
    assert refused.status_code == 422 and "text/html" in refused.headers["content-type"]


async def test_live_mode_has_no_demo_shop() -> None:
    app = FastAPI()
    _include_front_door(app, Settings.model_construct(gateway_mode="live"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://live.test") as client:
        front = await client.get("/")
        assert front.status_code == 307 and front.headers["location"] == "/docs"
        assert (await client.post("/demo/checkout")).status_code in (404, 405)
