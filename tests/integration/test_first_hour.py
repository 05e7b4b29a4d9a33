"""A developer's first hour (issue 16): readiness on a schema that is not at head, `serve`
refusing it, `reconcile` from a shell with the in-process sandbox, the simulator's index at
`/sandbox/`, and 422 answers naming fields as the client sent them."""

from __future__ import annotations

import asyncio
import os
import subprocess

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.db import make_engine
from app.schema import alembic_config, head_revisions
from tests.integration.test_checkout import new_session
from tests.integration.test_cli import run_cli
from tests.support.db import alembic, create_database
from tests.support.fixtures import MERCHANT_KEY, OPS_KEY, ROOT, AppFactory

pytestmark = pytest.mark.integration

HEAD = head_revisions()[0]


async def test_unmigrated_database_is_not_ready_until_migrated(
    make_app: AppFactory, pg_url: str
) -> None:
    url = await create_database(pg_url, "rp_unmigrated")
    app = await make_app(database_url=url)

    ready = await app.client.get("/readyz")
    assert ready.status_code == 503, ready.text
    problem = ready.json()
    assert problem["code"] == "schema_not_at_head"
    assert "none (never migrated)" in problem["detail"] and HEAD in problem["detail"]
    # Not a 500 per call: the API says why.
    created = await app.merchant.post(
        "/v1/checkout/sessions",
        json={"amount": 100, "job": "AUTH", "email": "taro@example.com"},
    )
    assert created.status_code == 503 and created.json()["code"] == "schema_not_at_head"

    alembic(url, "upgrade", "head")
    ready = await app.client.get("/readyz")  # no restart needed
    assert ready.status_code == 200 and ready.json()["schema"] == HEAD
    await new_session(app)


async def test_a_schema_one_revision_behind_is_not_ready_a_newer_one_is(
    make_app: AppFactory, pg_url: str
) -> None:
    url = await create_database(pg_url, "rp_behind")
    alembic(url, "upgrade", "head")
    alembic(url, "downgrade", "-1")
    app = await make_app(database_url=url)
    ready = await app.client.get("/readyz")
    assert ready.status_code == 503
    before_head = ScriptDirectory.from_config(alembic_config("")).get_revision(HEAD).down_revision
    detail = ready.json()["detail"]
    assert f"is at {before_head}" in detail and f"needs {HEAD}" in detail

    # A newer release migrated it (rolling deploy): this code keeps serving.
    alembic(url, "upgrade", "head")
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        await engine.dispose()
    assert (await app.client.get("/readyz")).status_code == 200


async def test_serve_refuses_a_schema_behind_head(pg_url: str) -> None:
    url = await create_database(pg_url, "rp_serve")
    code, out = await asyncio.wait_for(
        run_cli("serve", "--port", "18499", DATABASE_URL=url, GATEWAY_BASE_URL=""), 120
    )
    assert code == 3, out
    assert "serve: refusing to start" in out and "never migrated" in out
    assert "scripts/app migrate" in out


async def test_migrate_prints_no_alembic_plugin_lines(pg_url: str) -> None:
    url = await create_database(pg_url, "rp_quiet")
    code, out = await run_cli("migrate", DATABASE_URL=url, LOG_LEVEL="INFO")
    assert code == 0 and "migrate: done" in out
    assert "setup plugin" not in out


async def test_reconcile_from_a_shell_asks_the_in_process_sandbox_server(
    make_app: AppFactory, db_url: str
) -> None:
    app = await make_app(gateway_base_url="", search_api_base_url="", kickback_allowed_ips="")
    # The in-process simulator garbles the answer after charging: the payment is unknown.
    assert await app.client.post("/sandbox/_sandbox/faults", json={"garbage_after_charge": 1})
    cs = await new_session(app)
    paid = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "tok_approved"}
    )
    assert paid.status_code == 202 and paid.json()["status"] == "unknown", paid.text
    await app.client.post("/sandbox/_sandbox/faults", json={})

    env = {
        "DATABASE_URL": db_url,
        "GATEWAY_BASE_URL": "",
        "API_KEYS": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
    }
    code, out = await run_cli("reconcile", "--server", app.url, **env)
    assert code == 0, out
    assert f"asking the server at {app.url}" in out
    assert f"{paid.json()['id']}: settled unknown -> authorized" in out
    assert "reconcile: 1 checked, 1 settled" in out

    # No server there: a clear message naming what to do, not a traceback.
    code, out = await run_cli("reconcile", "--server", "http://127.0.0.1:9", **env)
    assert code == 2 and "none answers at http://127.0.0.1:9" in out and "scripts/serve" in out


async def test_the_simulator_root_is_its_index(make_app: AppFactory) -> None:
    app = await make_app(gateway_base_url="", search_api_base_url="")
    index = await app.client.get("/sandbox/", follow_redirects=True)
    assert index.status_code == 200
    endpoints = index.json()["endpoints"]
    assert endpoints["billing_payers"] == "/sandbox/_sandbox/billing/payers"
    assert "tok_approved" in {card["token"] for card in index.json()["cards"]}
    assert (await app.client.get("/sandbox", follow_redirects=True)).status_code == 200


async def test_422_names_fields_as_sent_without_pydantic_prefixes(make_app: AppFactory) -> None:
    app = await make_app()
    listed = await app.ops.get("/v1/payments", params=[("status", "authorized"), ("status", "x")])
    assert listed.status_code == 422
    [error] = listed.json()["errors"]
    assert error["field"] == "status", error
    cs = await new_session(app)
    both = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": "tok_approved", "card_num": 1}
    )
    assert both.status_code == 422
    messages = [e["message"] for e in both.json()["errors"]]
    assert not [m for m in messages if m.startswith(("Value error", "Assertion failed"))], messages
    amount = await app.merchant.post("/v1/checkout/sessions", json={"amount": "x", "job": "AUTH"})
    assert "amount" in [e["field"] for e in amount.json()["errors"]]


def test_scripts_app_runs_the_cli_from_a_fresh_shell() -> None:
    """No virtualenv active, system paths only, another working directory: `scripts/app` still
    finds the project's Python (where `python3 -m app` finds no httpx)."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    proc = subprocess.run(
        [str(ROOT / "scripts" / "app"), "create-api-key", "--role", "ops"],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].endswith(":ops")
