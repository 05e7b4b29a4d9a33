"""GET /v1/payments: filters and keyset pagination that stays exact while rows are inserted."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.payments.models import Payment
from app.payments.service import cod_for
from tests.support.fixtures import AppFactory, RunningApp

pytestmark = pytest.mark.integration


async def insert(
    sessions: async_sessionmaker[AsyncSession], created_at: datetime, **kw: Any
) -> str:
    values: dict[str, Any] = {
        "kind": "checkout",
        "status": "authorized",
        "job": "AUTH",
        "amount": 1000,
        "tax": 0,
        "shipping": 0,
        "result_mode": 1,
        "check_attempts": 0,
        "needs_attention": False,
    }
    values.update(kw)
    async with sessions() as session:
        pid = new_id("pay")
        cod = cod_for(values.get("order_id"), pid)
        p = Payment(id=pid, cod=cod, created_at=created_at, **values)
        session.add(p)
        await session.commit()
        return p.id


async def page(app: RunningApp, **params: Any) -> dict[str, Any]:
    r = await app.ops.get("/v1/payments", params=params)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


async def test_pagination_returns_every_row_once_while_rows_are_inserted(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    base = utcnow() - timedelta(hours=1)
    originals = set()
    for i in range(30):
        # Groups of three share a timestamp: the id breaks the tie.
        originals.add(await insert(sessions, base + timedelta(seconds=i // 3)))

    seen: list[str] = []
    older: set[str] = set()
    cursor = None
    for n in range(100):
        params: dict[str, Any] = {"limit": 7}
        if cursor:
            params["cursor"] = cursor
        body = await page(app, **params)
        seen += [p["id"] for p in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
        # Meanwhile: new payments (newer than any page) and a late one older than all.
        await insert(sessions, utcnow())
        await insert(sessions, utcnow())
        older.add(await insert(sessions, base - timedelta(minutes=n + 1)))
    assert len(seen) == len(set(seen)), "a row was returned twice"
    assert originals <= set(seen)
    # Rows inserted behind the cursor are found too (newest first: older ones come later).
    assert older <= set(seen)


async def test_filters(make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]) -> None:
    app = await make_app()
    now = utcnow()
    a = await insert(sessions, now - timedelta(days=2), order_id="o1", gid=111, amount=500)
    b = await insert(
        sessions, now - timedelta(hours=1), status="unknown", customer_uid="cust1", amount=3000
    )
    c = await insert(
        sessions, now, status="unknown", needs_attention=True, order_id="o2", amount=900, tax=90
    )

    def ids(body: dict[str, Any]) -> list[str]:
        return [p["id"] for p in body["data"]]

    assert ids(await page(app, status="unknown")) == [c, b]
    assert ids(await page(app, status=["authorized", "unknown"])) == [c, b, a]
    assert ids(await page(app, order_id="o1")) == [a]
    assert ids(await page(app, customer_id="cust1")) == [b]
    assert ids(await page(app, gid=111)) == [a]
    assert ids(await page(app, amount_min=990, amount_max=2000)) == [c]  # totals
    assert ids(await page(app, needs_attention="true")) == [c]
    since = (now - timedelta(days=1)).isoformat()
    assert ids(await page(app, created_from=since)) == [c, b]
    assert ids(await page(app, created_to=since)) == [a]
    naive = await app.ops.get("/v1/payments", params={"created_from": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    bad = await app.ops.get("/v1/payments", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert (await app.ops.get("/v1/payments", params={"status": "lost"})).status_code == 422
