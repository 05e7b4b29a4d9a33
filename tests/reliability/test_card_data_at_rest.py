"""Card data someone sends where it does not belong never comes to rest: a kickback carrying
`cn`/`cvv` (in its database row and in the spool), a card number as X-Request-ID, card numbers
written in every form in what the app logs, and card-shaped merchant fields (refused, 422).

Each test counts the places that hold a number (rows, spool lines, log lines) with the suite's
own detector (tests/support/carddata.py), which is independent of app/carddata.py."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.kickbacks.models import Kickback
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, three_ds_of
from tests.reliability.support_chaos import app_processes
from tests.support.carddata import find_card_data
from tests.support.fixtures import TABLES, AppFactory
from tests.support.pg import free_port

pytestmark = pytest.mark.reliability

PAN = cards.CARD_OK  # 4444333322221111
GROUPS = [PAN[i : i + 4] for i in range(0, 16, 4)]
# The number as people and encoders write it.
FORMS = {
    "plain": PAN,
    "spaced": " ".join(GROUPS),
    "hyphenated": "-".join(GROUPS),
    "dotted": ".".join(GROUPS),
    "plus": "+".join(GROUPS),
    "%20": "%20".join(GROUPS),
    "%2D": "%2D".join(GROUPS),
    "double-encoded": "%2520".join(GROUPS),
}


async def _rows_with_card_data(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    """Every row of every table (bytea as text) that holds card data."""
    found = []
    async with sessions() as s:
        for table in (t.strip() for t in TABLES.split(",")):
            rows = await s.execute(text(f"SELECT row_to_json(t)::text FROM {table} t"))
            for (row,) in rows:
                data = json.loads(row)
                for column in ("raw_query", "raw_body"):
                    if isinstance(data.get(column), str) and data[column].startswith("\\x"):
                        data[column] = bytes.fromhex(data[column][2:]).decode("latin-1")
                if leaks := find_card_data(json.dumps(data, ensure_ascii=False)):
                    found.append(f"{table}: {leaks}")
    return found


def _kickback_requests() -> list[tuple[str, str, bytes]]:
    """(method, query, body): the card in a query and in a form body, each form."""
    out: list[tuple[str, str, bytes]] = []
    for i, written in enumerate(FORMS.values()):
        query = f"gid={100000 + i}&rst=1&cn={written}&cvv=987&memo={written}&am=1000"
        out.append(("GET", query, b""))
        out.append(("POST", "", f"gid={200000 + i}&rst=1&cn={written}&cvv=987".encode()))
    # The body as JSON, too.
    out.append(
        ("POST", "", json.dumps({"cn": PAN, "cvv": "987", "memo": FORMS["spaced"]}).encode())
    )
    return out


async def test_card_data_in_a_kickback_is_redacted_before_the_inbox(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    requests = _kickback_requests()
    for method, query, body in requests:
        headers = {"content-type": "application/x-www-form-urlencoded"}
        r = await app.client.request(
            method, f"/kickback?{query}" if query else "/kickback", content=body, headers=headers
        )
        assert r.status_code == 200 and r.text.strip(), r.text
    async with sessions() as s:
        rows = (await s.execute(select(Kickback))).scalars().all()
    assert len(rows) == len(requests), "every kickback was stored (none spooled)"
    leaks = await _rows_with_card_data(sessions)
    print(f"\nFIGURE kickback rows holding card data: {len(leaks)} of {len(rows)}")
    assert not leaks, leaks
    # What is not card data is kept as received: the ids the kickback is matched by.
    queries = b" ".join(bytes(r.raw_query) for r in rows)
    assert b"gid=100000&rst=1&cn=***&cvv=***&memo=************1111&am=1000" in queries


async def test_card_data_in_a_kickback_is_redacted_before_the_spool(
    make_app: AppFactory, tmp_path: Path
) -> None:
    # A database that is not there: every kickback goes to the spool.
    down = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = await make_app(database_url=down, spool_dir=tmp_path / "spool")
    requests = _kickback_requests()
    for method, query, body in requests:
        r = await app.client.request(
            method, f"/kickback?{query}" if query else "/kickback", content=body
        )
        assert r.status_code == 200 and r.text.strip(), r.text
    lines = [
        line
        for path in sorted((tmp_path / "spool").glob("*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    assert len(lines) == len(requests), "every kickback was spooled"
    leaks = []
    for line in lines:
        spooled = json.loads(line)
        raw = b" ".join(base64.b64decode(spooled[k]) for k in ("raw_query", "raw_body"))
        if found := find_card_data(raw.decode("latin-1")) + find_card_data(line):
            leaks.append(found)
    print(f"\nFIGURE spool lines holding card data: {len(leaks)} of {len(lines)}")
    assert not leaks, leaks


REQUEST_IDS = [
    *FORMS.values(),
    "order-" + PAN,
    "rid.4444.3333.2222.1111",
    "x" * 65,  # not a sane id: too long
    "rid with spaces",
]


async def test_card_shaped_request_ids_are_replaced(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    echoed = []
    for rid in [*REQUEST_IDS, "rid-kept-1"]:
        cs = await app.merchant.post("/v1/checkout/sessions", json=SESSION)
        token = await make_token(sim, three_ds=three_ds_of(SESSION))
        r = await app.client.post(
            f"/v1/checkout/sessions/{cs.json()['id']}/pay",
            json={"token": token},
            headers={"X-Request-ID": rid},
        )
        assert r.status_code == 200, r.text
        echoed.append(r.headers["x-request-id"])
    leaks = await _rows_with_card_data(sessions)
    held = [rid for rid in echoed if find_card_data(rid)]
    print(
        f"\nFIGURE rows holding a card number from X-Request-ID: {len(leaks)}; echoed: {len(held)}"
    )
    assert not leaks, leaks
    assert not held, held
    assert echoed[-1] == "rid-kept-1", "a sane id is kept"
    replaced = echoed[:-1]
    assert all(len(rid) == 32 and rid.isalnum() for rid in replaced), replaced
    async with sessions() as s:
        stored = set((await s.scalars(text("SELECT request_id FROM payment_events"))).all())
        calls = set((await s.scalars(text("SELECT request_id FROM gateway_calls"))).all())
    assert set(echoed) <= stored and set(echoed) <= calls, "the ids used are the ones stored"


# Where a card number lands in a request that the app logs (uvicorn's access line and ours).
def _logged_requests(written: str) -> list[tuple[str, str, dict[str, str]]]:
    q = quote(written, safe="+%")
    return [
        ("GET", f"/v1/payments?order_id={q}", {}),
        ("GET", f"/kickback?gid=1&memo={q}&cvv=987", {}),
        ("GET", f"/checkout/{q}", {}),
        ("GET", f"/ops/payments?order_id={q}", {}),  # the console (not signed in: a redirect)
        ("GET", f"/ops/payments/{q}/capture", {}),
        ("GET", f"/no/such/{q}", {}),
        ("GET", "/healthz", {"X-Request-ID": written}),
    ]


async def test_logs_hold_no_card_number_in_any_written_form(
    db_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    log_dir = Path(os.environ.get("TEST_LOG_DIR") or tmp_path)
    env = {"LOG_LEVEL": "INFO", "SPOOL_DIR": str(tmp_path / "spool")}
    async with app_processes([env], db_url=db_url, log_dir=log_dir, name="carddata-app") as [app]:
        for written in FORMS.values():
            for method, url, headers in _logged_requests(written):
                r = await app.ops.request(method, url, headers=headers)
                assert r.status_code < 500, (url, r.status_code, r.text)
    lines = (log_dir / "carddata-app-0.log").read_text().splitlines()
    assert any("/v1/payments?order_id=" in line for line in lines), "access lines are logged"
    leaking = [line for line in lines if find_card_data(line)]
    print(f"\nFIGURE log lines holding a card number: {len(leaking)} of {len(lines)}")
    assert not leaking, leaking[:10]


# (path, body, field): a card-shaped value in each merchant field.
def _merchant_fields(spaced: str) -> list[tuple[str, dict[str, Any], str]]:
    base = dict(SESSION)
    return [
        ("/v1/checkout/sessions", {**base, "order_id": spaced}, "order_id"),
        ("/v1/checkout/sessions", {**base, "order_id": f"order {PAN}"}, "order_id"),
        ("/v1/checkout/sessions", {**base, "customer_id": PAN}, "customer_id"),
        ("/v1/checkout/sessions", {**base, "email": f"{PAN}@example.com"}, "email"),
        ("/v1/checkout/sessions", {**base, "phone": PAN}, "phone"),
        ("/v1/checkout/sessions", {**base, "item_code": "-".join(GROUPS)}, "item_code"),
        (
            "/v1/checkout/sessions",
            {**base, "success_url": f"https://shop.example/thanks?card={PAN}"},
            "success_url",
        ),
        (
            "/v1/checkout/sessions",
            {**base, "cancel_url": "https://shop.example/cart?cvv=987"},
            "cancel_url",
        ),
        ("/v1/customers", {"uid": PAN, "email": "s@example.com"}, "uid"),
        ("/v1/customers", {"uid": "cust1", "phone": PAN}, "phone"),
        (
            "/v1/billing/card-sessions",
            {"billing_code": PAN, "billing_payment_method_number": 1, "email": "s@example.com"},
            "billing_code",
        ),
        (
            "/v1/billing/card-sessions",
            {
                "billing_code": "B-1",
                "billing_payment_method_code": "-".join(GROUPS),
                "email": "s@example.com",
            },
            "billing_payment_method_code",
        ),
        (
            "/v1/billing/card-sessions",
            {"billing_code": "B-1", "billing_payment_method_number": 1, "tel": "3782 822463 10005"},
            "tel",
        ),
    ]


async def test_card_shaped_merchant_fields_are_refused(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    accepted = []
    for path, body, field in _merchant_fields(FORMS["spaced"]):
        r = await app.merchant.post(path, json=body)
        if r.status_code != 422:
            accepted.append(f"{path} {field}: {r.status_code}")
            continue
        errors = r.json()["errors"]
        assert [e["field"] for e in errors] == [field], r.text
        assert "looks like a card number" in errors[0]["message"], r.text
    # Ops free text, a path parameter and the Idempotency-Key header.
    others = [
        await app.ops.post(
            "/v1/payments/pay_x/resolve", json={"status": "failed", "reason": f"card {PAN}"}
        ),
        await app.merchant.get(f"/v1/customers/{PAN}"),
        await app.merchant.post(
            "/v1/checkout/sessions", json=SESSION, headers={"Idempotency-Key": "-".join(GROUPS)}
        ),
    ]
    for r in others:
        if r.status_code != 422:
            accepted.append(f"{r.request.method} {r.request.url.path}: {r.status_code}")
        else:
            assert "looks like a card number" in r.text, r.text
    leaks = await _rows_with_card_data(sessions)
    print(f"\nFIGURE card-shaped merchant values accepted: {len(accepted)}; rows: {len(leaks)}")
    assert not accepted, accepted
    assert not leaks, leaks
