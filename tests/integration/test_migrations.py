"""`alembic upgrade head` works on PostgreSQL and SQLite, and upgrade/downgrade/upgrade holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import make_engine
from app.models import Base
from tests.support.db import alembic, create_database

pytestmark = pytest.mark.integration

EXPECTED_TABLES = {
    "checkout_sessions",
    "payments",
    "payment_events",
    "customers",
    "cards",
    "gateway_calls",
    "kickbacks",
    "idempotency_keys",
}


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def names(sync_conn: AsyncConnection) -> set[str]:
                return set(inspect(sync_conn).get_table_names())

            return await conn.run_sync(names)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def _autogenerate_diff(url: str) -> list[object]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def diff(sync_conn: AsyncConnection) -> list[object]:
                ctx = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
                return list(compare_metadata(ctx, Base.metadata))

            return await conn.run_sync(diff)  # type: ignore[arg-type]
    finally:
        await engine.dispose()


async def test_postgres_upgrade_downgrade_upgrade(pg_url: str) -> None:
    url = await create_database(pg_url, "rp_migr")
    alembic(url, "upgrade", "head")
    assert await _tables(url) >= EXPECTED_TABLES
    assert await _autogenerate_diff(url) == [], "models and migrations disagree"
    alembic(url, "downgrade", "base")
    assert (await _tables(url)) - {"alembic_version"} == set()
    alembic(url, "upgrade", "head")
    assert await _tables(url) >= EXPECTED_TABLES


async def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.sqlite3'}"
    alembic(url, "upgrade", "head")
    assert await _tables(url) >= EXPECTED_TABLES
    alembic(url, "downgrade", "base")
    assert (await _tables(url)) - {"alembic_version"} == set()
    alembic(url, "upgrade", "head")
    assert await _tables(url) >= EXPECTED_TABLES


async def test_one_live_payment_per_session_is_a_database_fact(pg_url: str) -> None:
    """Two non-failed payments for one checkout session cannot both exist, whatever the code
    above the database does; a failed attempt does not block a retry."""
    url = await create_database(pg_url, "rp_uq")
    alembic(url, "upgrade", "head")
    engine = make_engine(url)
    insert = text(
        "INSERT INTO payments (id, kind, status, job, checkout_session_id, cod, amount, tax,"
        " shipping, result_mode, check_attempts, needs_attention, created_at, updated_at) VALUES"
        " (:id, 'checkout', :status, 'AUTH', 'cs_1', :id, 100, 0, 0, 1, 0, false, now(), now())"
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO checkout_sessions (id, status, job, amount, tax, shipping,"
                    " save_card, attempts, expires_at, created_at, updated_at) VALUES"
                    " ('cs_1', 'open', 'AUTH', 100, 0, 0, false, 0, now(), now(), now())"
                )
            )
            await conn.execute(insert, {"id": "pay_failed", "status": "failed"})
            await conn.execute(insert, {"id": "pay_live", "status": "pending"})
        with pytest.raises(Exception, match="uq_payments_live_per_session"):
            async with engine.begin() as conn:
                await conn.execute(insert, {"id": "pay_second", "status": "unknown"})
    finally:
        await engine.dispose()


async def test_card_pages_have_no_payment_terms(pg_url: str) -> None:
    """0011: a card page's zero charge becomes NULL (and comes back on downgrade); a payment
    page must have its terms and a card page may not."""
    url = await create_database(pg_url, "rp_terms")
    alembic(url, "upgrade", "0010_edges")
    engine = make_engine(url)
    columns = "job, amount, tax, shipping, save_card, offer_save_card"
    card = (
        "INSERT INTO checkout_sessions (id, kind, status, job, amount, tax, shipping, save_card,"
        " offer_save_card, attempts, expires_at, created_at, updated_at) VALUES ('cs_card',"
        " 'card_registration', 'open', 'AUTH', 0, 0, 0, true, false, 0, now(), now(), now())"
    )
    try:
        async with engine.begin() as conn:
            await conn.execute(text(card))
        alembic(url, "upgrade", "head")
        async with engine.begin() as conn:
            row = (await conn.execute(text(f"SELECT {columns} FROM checkout_sessions"))).one()
        assert tuple(row) == (None,) * 6
        with pytest.raises(Exception, match="ck_checkout_sessions_payment_terms"):
            async with engine.begin() as conn:
                await conn.execute(text(card.replace("'cs_card'", "'cs_card2'")))
        with pytest.raises(Exception, match="ck_checkout_sessions_payment_terms"):
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO checkout_sessions (id, kind, status, attempts, expires_at,"
                        " created_at, updated_at) VALUES ('cs_pay', 'payment', 'open', 0, now(),"
                        " now(), now())"
                    )
                )
        alembic(url, "downgrade", "0010_edges")
        async with engine.begin() as conn:
            row = (await conn.execute(text(f"SELECT {columns} FROM checkout_sessions"))).one()
        assert tuple(row) == ("AUTH", 0, 0, 0, True, False)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_the_cod_each_payment_was_sent_with_is_kept(
    pg_url: str, tmp_path: Path, backend: str
) -> None:
    """0013: payments made before it keep the cod they were sent with (the order id, else the
    payment id with its "_"; a re-authorization its root's), so kickbacks and the search still
    match them; new payments send an alphanumeric default."""
    if backend == "postgresql":
        url = await create_database(pg_url, "rp_cod")
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'cod.sqlite3'}"
    alembic(url, "upgrade", "0012_merchant_terms")
    engine = make_engine(url)
    insert = text(
        "INSERT INTO payments (id, kind, status, job, order_id, reauth_of_id, amount, tax,"
        " shipping, result_mode, check_attempts, needs_attention, created_at, updated_at) VALUES"
        " (:id, :kind, 'authorized', 'AUTH', :order_id, :parent, 100, 0, 0, 1, 0, false,"
        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    rows = [
        ("pay_ordered", "checkout", "order-7", None),
        ("pay_plain", "checkout", None, None),
        ("pay_re1", "reauth", None, "pay_plain"),
        ("pay_re2", "reauth", None, "pay_re1"),
        ("pay_re3", "reauth", "order-7", "pay_ordered"),
    ]
    try:
        async with engine.begin() as conn:
            for pid, kind, order_id, parent in rows:
                await conn.execute(
                    insert, {"id": pid, "kind": kind, "order_id": order_id, "parent": parent}
                )
        alembic(url, "upgrade", "head")
        async with engine.begin() as conn:
            got: dict[str, str] = dict(
                (await conn.execute(text("SELECT id, cod FROM payments"))).all()
            )
        assert got == {
            "pay_ordered": "order-7",
            "pay_plain": "pay_plain",
            "pay_re1": "pay_plain",
            "pay_re2": "pay_plain",
            "pay_re3": "order-7",
        }
        if backend == "postgresql":  # SQLite's batch rebuild is refused with rows (its FKs)
            alembic(url, "downgrade", "0012_merchant_terms")
            alembic(url, "upgrade", "head")
    finally:
        await engine.dispose()
