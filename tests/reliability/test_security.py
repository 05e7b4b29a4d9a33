"""Security: every /v1 route needs a key of the right role (found by walking the OpenAPI
document, so new routes are covered), card-testing limits per customer and per client IP
(429, counted in the database), security headers on pages and API answers, tokens and API
keys masked everywhere they are written, and SQL injection in every list filter harmless."""

from __future__ import annotations

import io
import logging
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.payments.models import Payment
from app.sandbox import cards
from app.sandbox.testing import make_token
from app.velocity import PayFailure
from tests.support.db import gateway_call_count
from tests.support.fixtures import MERCHANT_KEY, OPS_KEY, TABLES, AppFactory, RunningApp

pytestmark = pytest.mark.reliability

SESSION = {"amount": 1000, "tax": 80, "shipping": 500, "job": "AUTH", "email": "s@example.com"}
THREE_DS = {"am": "1000", "tx": "80", "sf": "500", "em": "s@example.com"}
# /v1 operations that need no API key, and why.
PUBLIC = {
    # The unguessable, single-use session id is the capability (the shopper's browser).
    ("POST", "/v1/checkout/sessions/{session_id}/pay"),
}
METHODS = ("get", "put", "post", "delete", "patch")


# --- authentication and roles --------------------------------------------------------------


def _dummy(param: dict[str, Any]) -> str:
    schema = param.get("schema", {})
    return "1" if schema.get("type") == "integer" else "dummy1"


def _v1_operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
        if method in METHODS
    ]


def _roles(op: dict[str, Any]) -> set[str]:
    return {role for req in op.get("security", []) for names in req.values() for role in names}


async def test_every_v1_route_needs_a_key_of_its_role(make_app: AppFactory) -> None:
    app = await make_app()
    doc = (await app.client.get("/openapi.json")).json()
    operations = _v1_operations(doc)
    # Every /v1 route of the app is in the document (a hidden one would escape this test).
    documented = {(m, p) for m, p, _ in operations}
    walked = 0
    for context in iter_route_contexts(app.app.routes):  # included routers' routes too
        route, path = context.original_route, str(context.path)
        if isinstance(route, APIRoute) and path.startswith("/v1/"):
            for method in (route.methods or set()) - {"HEAD"}:
                assert (method, path) in documented, f"{method} {path} is hidden"
                walked += 1
    assert walked >= 20, "the walk found the app's routes"
    assert len(operations) >= 20, "the walk found the API"

    wrong_key = {"Authorization": "Bearer sk_not_a_key_of_ours_1"}
    checked = 0
    for method, path, op in operations:
        label = f"{method} {path}"
        roles = _roles(op)
        if (method, path) in PUBLIC:
            assert not roles, f"{label} is listed as public but declares a role"
            continue
        assert len(roles) == 1, f"{label} declares no role: is it protected?"
        (role,) = roles
        url = path
        for param in op.get("parameters", []):
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", _dummy(param))
        body: dict[str, Any] | None = {} if "requestBody" in op else None
        for headers in ({}, wrong_key, {"X-API-Key": "sk_not_a_key_of_ours_1"}):
            r = await app.client.request(method, url, json=body, headers=headers)
            assert r.status_code == 401, f"{label} without a valid key: {r.status_code} {r.text}"
            assert r.headers["content-type"] == "application/problem+json", label
            assert r.headers["www-authenticate"] == "Bearer", label
        good = {"merchant": app.merchant, "ops": app.ops}[role]
        r = await good.request(method, url, json=body)
        assert r.status_code not in (401, 403), f"{label} refuses its own role: {r.text}"
        if role == "ops":
            r = await app.merchant.request(method, url, json=body)
            assert r.status_code == 403, f"{label} with a merchant key: {r.status_code}"
            assert r.json()["type"] == "/problems/forbidden", label
        checked += 1
    assert checked == len(operations) - len(PUBLIC)


# --- card testing ----------------------------------------------------------------------------


async def _metric(app: RunningApp, scope: str) -> float:
    body = (await app.client.get("/metrics")).text
    match = re.search(rf'^rp_velocity_rejections_total{{scope="{scope}"}} (\S+)$', body, re.M)
    return float(match.group(1)) if match else 0.0


async def _pay(
    app: RunningApp,
    sim: httpx.AsyncClient,
    card: str,
    *,
    ip: str = "127.0.0.1",
    **session: Any,
) -> httpx.Response:
    cs = await app.merchant.post("/v1/checkout/sessions", json={**SESSION, **session})
    assert cs.status_code == 201, cs.text
    token = await make_token(sim, card=card, three_ds=THREE_DS)
    return await app.client.post(
        f"/v1/checkout/sessions/{cs.json()['id']}/pay",
        json={"token": token},
        headers={"X-Forwarded-For": ip},
    )


async def test_failed_pays_per_customer_are_limited(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(velocity_max_failures_per_customer=3, velocity_max_failures_per_ip=0)
    before = await _metric(app, "customer")
    for card in (cards.CARD_DECLINE_G12, cards.CARD_DECLINE_G55, cards.CARD_3DS_FAIL):
        r = await _pay(app, sim, card, customer_id="tester1")
        assert r.status_code == 402, r.text
    calls = await gateway_call_count(sessions)
    # A fourth session of the same customer, a good card: refused before the gateway.
    r = await _pay(app, sim, cards.CARD_OK, customer_id="tester1")
    assert r.status_code == 429, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "too_many_failures" and r.headers["retry-after"] == "3600"
    assert await gateway_call_count(sessions) == calls
    assert await _metric(app, "customer") == before + 1
    # Another customer, and a shopper without one, are not affected.
    assert (await _pay(app, sim, cards.CARD_OK, customer_id="other1")).status_code == 200
    assert (await _pay(app, sim, cards.CARD_OK)).status_code == 200
    async with sessions() as s:
        rows = (await s.execute(select(PayFailure.scope, PayFailure.key))).all()
    assert sorted(rows) == [("customer", "tester1")] * 3


async def test_failed_pays_per_client_ip_are_limited_across_replicas(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    limits = {"velocity_max_failures_per_ip": 3, "velocity_max_failures_per_customer": 0}
    a, b = await make_app(**limits), await make_app(**limits)
    attacker, shopper = "203.0.113.7", "198.51.100.9"
    # uvicorn takes X-Forwarded-For from its trusted proxy (127.0.0.1 here) as the client.
    for app in (a, b, a):
        r = await _pay(app, sim, cards.CARD_DECLINE_G12, ip=attacker)
        assert r.status_code == 402, r.text
    before = await _metric(b, "ip")
    r = await _pay(b, sim, cards.CARD_OK, ip=attacker)
    assert r.status_code == 429, r.text
    assert await _metric(b, "ip") == before + 1
    # The checkout page's form post is refused too, with the page's error page.
    cs = (await a.merchant.post("/v1/checkout/sessions", json=SESSION)).json()
    token = await make_token(sim, three_ds=THREE_DS)
    page = await a.client.post(
        f"/checkout/{cs['id']}", data={"tkn": token}, headers={"X-Forwarded-For": attacker}
    )
    assert page.status_code == 429 and "text/html" in page.headers["content-type"]
    assert (await _pay(a, sim, cards.CARD_OK, ip=shopper)).status_code == 200
    # The window slides: once the failures are older than it, the address may pay again.
    async with sessions() as s:
        await s.execute(
            text("UPDATE velocity_failures SET created_at = created_at - interval '2 hours'")
        )
        await s.commit()
    assert (await _pay(b, sim, cards.CARD_OK, ip=attacker)).status_code == 200


async def test_card_pages_count_towards_the_limits_too(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Registering a card is a zero-amount check, as useful to a card tester as a pay: the
    customer card page and the billing-robo card page count failures and are refused too."""
    app = await make_app(velocity_max_failures_per_ip=2, velocity_max_failures_per_customer=0)
    email, tel = "s@example.com", "0312345678"
    zero = {"am": "0", "tx": "0", "sf": "0", "em": email}

    async def post(page_id: str, card: str, ip: str, pn: str | None = None) -> httpx.Response:
        three_ds = {**zero, "pn": pn} if pn else zero
        token = await make_token(sim, card=card, three_ds=three_ds)
        headers = {"X-Forwarded-For": ip}
        return await app.client.post(f"/checkout/{page_id}", data={"tkn": token}, headers=headers)

    assert (
        await app.merchant.post("/v1/customers", json={"uid": "reg1", "email": email})
    ).is_success
    card_page = (await app.merchant.post("/v1/customers/reg1/card-sessions", json={})).json()
    payer = {
        "billing_code": "B-VEL",
        "email": email,
        "tel": tel,
        "payment_methods": [{"number": 1}],
    }
    assert (await sim.post("/_sandbox/billing/payers", json=payer)).status_code == 200
    billing = {
        "billing_code": "B-VEL",
        "billing_payment_method_number": 1,
        "email": email,
        "tel": tel,
        "success_url": "https://shop.example/done",
    }
    billing_page = (await app.merchant.post("/v1/billing/card-sessions", json=billing)).json()

    for page_id, pn, ip in (
        (card_page["id"], None, "203.0.113.21"),
        (billing_page["id"], tel, "203.0.113.22"),
    ):
        for _ in range(2):
            r = await post(page_id, cards.CARD_3DS_FAIL, ip, pn)
            assert r.status_code < 500 and r.status_code != 429, r.text
        calls = await gateway_call_count(sessions)
        r = await post(page_id, cards.CARD_OK, ip, pn)
        assert r.status_code == 429 and "text/html" in r.headers["content-type"], r.text
        assert await gateway_call_count(sessions) == calls, "refused before any gateway call"
        # Another address on the same page goes on.
        r = await post(page_id, cards.CARD_OK, "198.51.100.20", pn)
        assert r.status_code == 200, r.text
    async with sessions() as s:
        rows = (await s.execute(select(PayFailure.scope, PayFailure.key))).all()
    assert sorted(rows) == [("ip", "203.0.113.21")] * 2 + [("ip", "203.0.113.22")] * 2


# --- headers ---------------------------------------------------------------------------------


def _assert_page_headers(r: httpx.Response, *, payment_page: bool = True) -> None:
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, csp
    assert "'unsafe-inline'" not in csp, csp
    # A payment page's scripts: a per-request nonce plus the inventory's URLs (app/pagesec).
    assert ("script-src 'nonce-" if payment_page else "script-src 'self'") in csp, csp
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "strict-origin"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


def _assert_api_headers(r: httpx.Response) -> None:
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"


async def test_pages_and_api_answers_carry_security_headers(make_app: AppFactory) -> None:
    app = await make_app()
    cs = (await app.merchant.post("/v1/checkout/sessions", json=SESSION)).json()
    await app.merchant.post("/v1/customers", json={"uid": "hdr1", "email": "s@example.com"})
    card_page = (await app.merchant.post("/v1/customers/hdr1/card-sessions", json={})).json()
    for url in (f"/checkout/{cs['id']}", card_page["url"], "/checkout/cs_nope"):
        r = await app.client.get(url)
        assert "text/html" in r.headers["content-type"], url
        _assert_page_headers(r, payment_page="cs_nope" not in url)
    answers = [
        await app.ops.get("/v1/payments"),
        await app.client.get("/v1/payments"),  # 401 problem
        await app.ops.get("/v1/payments/pay_nope"),  # 404 problem
        await app.client.get("/no/such/route"),
        await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={}),  # 422
        await app.client.get("/kickback"),
        await app.client.get("/healthz"),
    ]
    for r in answers:
        _assert_api_headers(r)


# --- masking ---------------------------------------------------------------------------------


async def _table_text(sessions: async_sessionmaker[AsyncSession]) -> str:
    """Every row of every table, as JSON text."""
    out: list[str] = []
    async with sessions() as s:
        for table in (t.strip() for t in TABLES.split(",")):
            rows = await s.execute(text(f"SELECT row_to_json(t)::text FROM {table} t"))
            out.extend(row[0] for row in rows)
    return "\n".join(out)


async def test_tokens_and_api_keys_are_masked_in_the_trail_and_the_logs(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    # A copy of what the app's own log handler writes (same filter and format).
    app_handler = logging.getLogger().handlers[0]
    buffer = io.StringIO()
    mirror = logging.StreamHandler(buffer)
    mirror.setFormatter(app_handler.formatter)
    for f in app_handler.filters:
        mirror.addFilter(f)
    logging.getLogger().addHandler(mirror)
    tokens = []
    try:
        idem = {"Idempotency-Key": "mask-1"}
        cs = (await app.merchant.post("/v1/checkout/sessions", json=SESSION, headers=idem)).json()
        tokens.append(await make_token(sim, three_ds=THREE_DS))
        r = await app.client.post(
            f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": tokens[-1]}
        )
        assert r.status_code == 200, r.text
        # A declined one and a reused one (the token travels in error paths too).
        tokens.append(await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=THREE_DS))
        cs2 = (await app.merchant.post("/v1/checkout/sessions", json=SESSION)).json()
        await app.client.post(f"/v1/checkout/sessions/{cs2['id']}/pay", json={"token": tokens[-1]})
        await app.client.post(f"/v1/checkout/sessions/{cs2['id']}/pay", json={"token": tokens[0]})
        # A stored card and a one-touch charge with an Idempotency-Key.
        await app.merchant.post("/v1/customers", json={"uid": "mask1", "email": "s@example.com"})
        zero = {"am": "0", "tx": "0", "sf": "0", "em": "s@example.com"}
        tokens.append(await make_token(sim, three_ds=zero))
        card = await app.merchant.post("/v1/customers/mask1/cards", json={"token": tokens[-1]})
        assert card.status_code == 201, card.text
        one = {"customer_id": "mask1", "card_num": card.json()["num"], "amount": 500, "job": "AUTH"}
        r = await app.merchant.post("/v1/payments", json=one, headers={"Idempotency-Key": "mask-2"})
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        await app.ops.post(f"/v1/payments/{pid}/capture", headers={"Idempotency-Key": "mask-3"})
        # Card data someone sent us by mistake is refused, and not written anywhere either.
        bad = {"token": tokens[0], "cn": cards.CARD_OK, "cvv": "123"}
        assert (
            await app.client.post(f"/v1/checkout/sessions/{cs2['id']}/pay", json=bad)
        ).status_code == 422
        detail = (await app.ops.get(f"/v1/payments/{pid}")).text
    finally:
        logging.getLogger().removeHandler(mirror)
    stored, logs = await _table_text(sessions), buffer.getvalue()
    assert "charge_token" in stored and "mask-2" in stored, "the tables were read"
    assert "charge_onetouch" in logs or "gateway" in logs, "the logs were captured"
    for where, content in (("the database", stored), ("the logs", logs), ("the API", detail)):
        for token in tokens:
            assert token not in content, f"a raw token in {where}"
        for key in (MERCHANT_KEY, OPS_KEY):
            # Neither the key nor enough of it to guess the rest (a short key is 12 characters).
            assert key[:8] not in content, f"API key material in {where}"
        assert cards.CARD_OK not in content and "cvv=1" not in content, where
    assert re.search(r"tkn\(len=\d+,sha256=[0-9a-f]{8}\)", stored), "tokens appear masked"


# --- SQL injection ---------------------------------------------------------------------------

INJECTIONS = [
    "' OR '1'='1",
    "' OR 1=1 --",
    '" OR 1=1 --',
    "1; DROP TABLE payments; --",
    "x'; DELETE FROM payments; --",
    "' UNION SELECT id, NULL, NULL FROM payments --",
    "%' OR '%'='",
    "1) OR (1=1",
    "\\'; SELECT pg_sleep(0); --",
    "' AND 1=CAST((SELECT string_agg(id, ',') FROM payments) AS int) --",
    "\x00",
    "abc\x00' OR 1=1 --",
    "ＡＢＣ' OR 'あ'='あ",
    "9" * 40,
    "-1",
    "1e309",
    "2026-13-45T99:99:99+09:00",
    "null",
    "[]",
]


def _is_free_text(param: dict[str, Any]) -> bool:
    schemas = param.get("schema", {}).get("anyOf", [param.get("schema", {})])
    return any(s.get("type") == "string" and "format" not in s and "enum" not in s for s in schemas)


async def _table_counts(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    async with sessions() as s:
        return {
            t: int(await s.scalar(text(f"SELECT count(*) FROM {t}")) or 0)
            for t in (t.strip() for t in TABLES.split(","))
        }


async def test_sql_injection_in_list_filters_is_harmless(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    for order in ("inj1", "inj2"):
        r = await _pay(app, sim, cards.CARD_OK, order_id=order, customer_id="injcust")
        assert r.status_code == 200, r.text
    await app.merchant.post("/v1/customers", json={"uid": "injcust", "email": "s@example.com"})
    doc = (await app.client.get("/openapi.json")).json()
    # Every GET under /v1 that takes query parameters (the list endpoints), and the list of a
    # customer's cards, whose filter is its path.
    # (path, where, name, free text: a hostile value of it can match nothing)
    targets: list[tuple[str, str, str, bool]] = []
    for method, path, op in _v1_operations(doc):
        for p in op.get("parameters", []):
            if method == "GET" and p["in"] == "query":
                targets.append((path, "query", p["name"], _is_free_text(p)))
    targets.append(("/v1/customers/{uid}/cards", "path", "uid", True))
    assert ("/v1/payments", "query", "order_id", True) in targets and len(targets) >= 10
    before = await _table_counts(sessions)
    for path, where, name, free_text in targets:
        for payload in INJECTIONS:
            if where == "query":
                r = await app.ops.get(path, params={name: payload})
            else:
                r = await app.ops.get(path.replace("{uid}", quote(payload, safe="")))
            label = f"{path} {name}={payload!r}"
            assert r.status_code in (200, 404, 422), f"{label}: {r.status_code} {r.text}"
            if r.status_code == 200 and free_text:
                rows = r.json()["data"] if "data" in r.json() else r.json().get("cards", [])
                # Nothing matches a hostile text, so nothing may come back. (A typed filter
                # may parse one: '-1' is a valid Unix time for created_from.)
                assert rows == [], f"{label} returned {len(rows)} rows"
    assert await _table_counts(sessions) == before, "the tables are intact"
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(Payment)) == 2
    listed = (await app.ops.get("/v1/payments", params={"order_id": "inj1"})).json()["data"]
    assert [p["order_id"] for p in listed] == ["inj1"], "the filter still works"


async def test_nul_characters_are_refused_not_a_server_error(make_app: AppFactory) -> None:
    # PostgreSQL text cannot hold a NUL: each of these reached the database and was a 500.
    app = await make_app()
    cs = (await app.merchant.post("/v1/checkout/sessions", json=SESSION)).json()
    answers = [
        await app.ops.get("/v1/payments/pay_%00"),
        await app.ops.get("/v1/payments", params={"order_id": "a\x00b"}),
        await app.merchant.get("/v1/checkout/sessions/cs_%00"),
        await app.client.get("/checkout/cs_%00/status"),
        await app.ops.post(
            "/v1/payments/pay_x/resolve", json={"status": "failed", "reason": "a\x00bc"}
        ),
        await app.merchant.post(
            "/v1/checkout/sessions", json={**SESSION, "success_url": "https://a.example/\x00"}
        ),
        await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "\x00" * 9}),
    ]
    for r in answers:
        assert r.status_code == 422, (r.request.url, r.status_code, r.text)
        assert r.json()["errors"][0]["message"] == "must not contain NUL characters", r.text
    # An escaped backslash followed by "u0000" is text, not a NUL.
    raw = b'{"status": "failed", "reason": "a\\\\u0000bc"}'
    r = await app.ops.post(
        "/v1/payments/pay_x/resolve", content=raw, headers={"content-type": "application/json"}
    )
    assert r.status_code == 404, r.text
