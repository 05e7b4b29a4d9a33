"""`GET /v1/gateway/charges` (ops) over real HTTP against the simulator process: each seed 003
filter, sort and paging, the date rules, the gateway's errors (ER400, ER520, ER999) and an
unreachable search, the role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.base import ChargeQuery, ErrorKind, SearchError
from app.gateway.robotpayment import RobotPaymentClient, make_http_client
from app.sandbox import cards
from app.sandbox.testing import pay_by_token
from tests.integration.test_operations import paid
from tests.support.db import gateway_call_count
from tests.support.fixtures import AppFactory, RunningApp
from tests.support.pg import free_port

pytestmark = pytest.mark.integration

PATH = "/v1/gateway/charges"


async def charge(
    sim: httpx.AsyncClient, *, jb: str = "AUTH", am: int = 1000, cod: str = "", **kw: Any
) -> int:
    """A charge made straight at the simulator (as another system of the shop would)."""
    r = await pay_by_token(sim, jb=jb, am=am, tx=80, sf=500, cod=cod, **kw)
    r.raise_for_status()
    return int(r.text.split(",")[0])


async def advance(sim: httpx.AsyncClient, seconds: float) -> None:
    (await sim.post("/_sandbox/clock", json={"advance_seconds": seconds})).raise_for_status()


async def capture(sim: httpx.AsyncClient, gid: int) -> None:
    aid = (await sim.get("/_sandbox/config")).json()["aid"]
    form = {"aid": aid, "jb": "SALES", "rt": "1", "tid": str(gid)}
    r = await sim.post("gateway/gateway.aspx", data=form)
    assert r.text.split(",")[1] == "1", r.text


async def recurring(sim: httpx.AsyncClient, gid: int) -> dict[str, Any]:
    r = await sim.post(f"/_sandbox/ledger/{gid}/recurring")
    assert r.status_code == 200, r.text
    row: dict[str, Any] = r.json()
    return row


async def found(app: RunningApp, **params: Any) -> dict[str, Any]:
    r = await app.ops.get(PATH, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def gids(app: RunningApp, **params: Any) -> list[int]:
    return [row["charge_id"] for row in (await found(app, per_page=1000, **params))["data"]]


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]


async def test_ops_only(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    problem(await app.merchant.get(PATH), 403)
    problem(await app.client.get(PATH), 401)
    assert (await app.ops.get(PATH)).status_code == 200


async def test_rows_have_neutral_names_masked_card_and_our_payment(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    ours = await paid(app, sim, order_id="orderlink1")
    theirs = await charge(sim, jb="CAPTURE", am=2000, cod="other1", card=cards.CARD_DECLINE_G55)

    [row] = (await found(app, charge_id=ours["gid"]))["data"]
    assert row["payment_id"] == ours["id"] and row["payment_status"] == "authorized"
    assert row["status"] == "authorized" and row["job"] == "AUTH"
    assert (row["amount"], row["tax"], row["shipping"], row["total"]) == (1000, 80, 500, 1580)
    assert row["order_id"] == "orderlink1" and row["recurring_id"] is None
    assert row["card"] == {"brand": "visa", "last4": "1111"}
    assert row["error"] is None and row["canceled_at"] is None
    created = datetime.fromisoformat(row["created_at"])
    assert row["created_at"].endswith("+09:00") and created.utcoffset() == timedelta(hours=9)

    [declined] = (await found(app, charge_id=theirs))["data"]
    assert declined["status"] == "failed" and declined["payment_id"] is None
    assert declined["error"]["gateway_code"] == "G55" and declined["error"]["message"]
    assert declined["card"]["last4"] == cards.CARD_DECLINE_G55[-4:]
    # Masked only: no full card number anywhere in the answer.
    r = await app.ops.get(PATH)
    assert cards.CARD_OK not in r.text and cards.CARD_DECLINE_G55 not in r.text


async def test_each_filter(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    auth = await charge(sim, jb="AUTH", cod="first1")
    await advance(sim, 2 * 86400)
    captured = await charge(sim, jb="CAPTURE", cod="second1")
    await advance(sim, 2 * 86400)
    sold = await charge(sim, jb="AUTH", cod="third1")
    await advance(sim, 3600)
    await capture(sim, sold)  # updated an hour after it was made; jb SALES
    billing = await recurring(sim, auth)  # auth is now a recurring billing's first charge
    acid = billing["acid"]
    rows = {r["charge_id"]: r for r in (await found(app, per_page=1000))["data"]}
    assert set(rows) == {auth, captured, sold}  # automatic charges are left out by default

    assert await gids(app, charge_id=captured) == [captured]
    assert await gids(app, job="CAPTURE") == [captured]
    assert await gids(app, job="SALES") == [sold]
    assert sorted(await gids(app, job=["AUTH", "SALES"])) == [auth, sold]
    assert await gids(app, automatic="true") == [billing["gid"]]
    assert sorted(await gids(app, automatic="false")) == sorted([auth, captured, sold])
    assert await gids(app, recurring_id=acid) == [auth]  # the first charge: not automatic
    assert await gids(app, recurring_id=acid, automatic="true") == [billing["gid"]]
    assert (await found(app, charge_id=auth))["data"][0]["recurring_id"] == acid

    at = {g: datetime.fromisoformat(rows[g]["created_at"]) for g in rows}
    window = {"created_from": at[captured].isoformat(), "created_to": at[captured].isoformat()}
    assert await gids(app, **window) == [captured]  # both ends inclusive
    assert sorted(await gids(app, created_from=at[captured].isoformat())) == [captured, sold]
    assert sorted(await gids(app, created_to=at[captured].isoformat())) == [auth, captured]
    # In UTC too: the gateway's Japan time is computed, not assumed.
    utc = (at[captured] - timedelta(seconds=1)).astimezone(UTC)
    assert sorted(await gids(app, created_from=utc.isoformat())) == [captured, sold]
    updated_after = (at[sold] + timedelta(minutes=30)).isoformat()
    assert await gids(app, updated_from=updated_after) == [sold]
    assert sorted(await gids(app, updated_to=updated_after)) == [auth, captured]
    both = {"updated_from": updated_after, "updated_to": (at[sold] + timedelta(days=1)).isoformat()}
    assert await gids(app, **both) == [sold]


async def test_sort_and_paging(make_app: AppFactory, sim: httpx.AsyncClient) -> None:
    app = await make_app()
    made = []
    for i in range(5):
        made.append(await charge(sim, cod=f"sort{i}"))
        await advance(sim, 60)
    await capture(sim, made[0])  # the most recently updated

    first = await found(app, sort="charge_id", order="asc", per_page=2)
    assert (first["page"], first["pages"], first["total"], first["per_page"]) == (1, 3, 5, 2)
    assert [r["charge_id"] for r in first["data"]] == made[:2]
    last = await found(app, sort="charge_id", order="asc", per_page=2, page=3)
    assert [r["charge_id"] for r in last["data"]] == made[4:]
    default = await found(app)  # newest first
    assert (default["sort"], default["order"]) == ("created_at", "desc")
    assert [r["charge_id"] for r in default["data"]] == made[::-1]
    assert await gids(app, sort="created_at", order="asc") == made
    assert (await gids(app, sort="updated_at", order="desc"))[0] == made[0]
    assert await gids(app, sort="updated_at", order="asc") == [*made[1:], made[0]]
    billing = await recurring(sim, made[2])
    assert (await gids(app, sort="recurring_id", order="desc"))[0] == made[2]
    assert await gids(app, sort="recurring_id", automatic="true") == [billing["gid"]]

    body = problem(await app.ops.get(PATH, params={"per_page": 2, "page": 4}), 422)
    assert fields(body) == ["page"] and "3 pages" in body["detail"]
    assert fields(problem(await app.ops.get(PATH, params={"sort": "amount"}), 422)) == ["sort"]
    assert fields(problem(await app.ops.get(PATH, params={"order": "up"}), 422)) == ["order"]
    assert fields(problem(await app.ops.get(PATH, params={"page": 0}), 422)) == ["page"]
    body = problem(await app.ops.get(PATH, params={"per_page": 1001}), 422)
    assert fields(body) == ["per_page"] and "1000" in body["errors"][0]["message"]
    # Nothing matched: one empty page, and no second one.
    empty = await found(app, charge_id=1)
    assert (empty["data"], empty["pages"], empty["total"]) == ([], 0, 0)
    problem(await app.ops.get(PATH, params={"charge_id": 1, "page": 2}), 422)


async def test_date_rules(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await charge(sim)
    t0 = datetime.fromisoformat("2026-12-01T00:00:00+09:00")
    seven = {"created_from": t0.isoformat(), "created_to": (t0 + timedelta(days=7)).isoformat()}
    assert (await app.ops.get(PATH, params=seven)).status_code == 200  # 7日以内: 7 days is in
    before = await gateway_call_count(sessions)

    async def refused(params: dict[str, Any], *names: str) -> dict[str, Any]:
        body = problem(await app.ops.get(PATH, params=params), 422)
        assert fields(body) == list(names), body
        return body

    late = (t0 + timedelta(days=7, seconds=1)).isoformat()
    body = await refused({"created_from": t0.isoformat(), "created_to": late}, "created_to")
    assert "7 days" in body["errors"][0]["message"]
    await refused({"updated_from": t0.isoformat(), "updated_to": late}, "updated_to")
    earlier = (t0 - timedelta(seconds=1)).isoformat()
    body = await refused({"created_from": t0.isoformat(), "created_to": earlier}, "created_to")
    assert "before created_from" in body["errors"][0]["message"]
    body = await refused({"created_from": "2026-12-01T00:00:00"}, "created_from")
    assert "timezone" in body["errors"][0]["message"]
    await refused({"updated_to": "yesterday"}, "updated_to")
    await refused({"created_from": "0001-01-01T00:00:00+10:00"}, "created_from")
    # Refused before any call to the gateway.
    assert await gateway_call_count(sessions) == before
    # One end alone is an open range, however far.
    far = (t0 - timedelta(days=3650)).isoformat()
    assert (await app.ops.get(PATH, params={"created_from": far})).json()["total"] == 1
    assert (await app.ops.get(PATH, params={"updated_to": far})).json()["total"] == 0


async def test_too_many_results_asks_to_narrow(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    first = await charge(sim)
    await charge(sim)
    # The threshold (54,000, seed 003) lowered so that two charges reach it.
    (await sim.post("/_sandbox/config", json={"search_max_results": 2})).raise_for_status()
    body = problem(await app.ops.get(PATH), 422)
    assert body["gateway_code"] == "ER520" and body["code"] == "search_too_many_results"
    assert "narrow the filter" in body["detail"]
    assert await gids(app, charge_id=first) == [first]  # a narrower search works


async def test_maintenance_and_an_unreachable_search_are_503(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    (await sim.post("/_sandbox/maintenance", json={"on": True})).raise_for_status()
    body = problem(await app.ops.get(PATH), 503)
    assert body["gateway_code"] == "ER999" and body["code"] == "maintenance"
    (await sim.post("/_sandbox/maintenance", json={"on": False})).raise_for_status()

    down = await make_app(search_api_base_url=f"http://127.0.0.1:{free_port()}/api")
    body = problem(await down.ops.get(PATH), 503)
    assert body["code"] == "gateway_unavailable"


async def test_the_gateways_er400_names_the_query_field(
    simulator_url: str, sim: httpx.AsyncClient
) -> None:
    """The provider turns an ER400 about a query value into an invalid query naming it in
    ChargeQuery's words (what the API answers as a 422 naming the parameter)."""
    http = make_http_client(connect_timeout=2.0, read_timeout=2.0)
    client = RobotPaymentClient(
        http=http,
        base_url=simulator_url,
        aid="100001",
        search_base_url=f"{simulator_url}/api",
        search_api_key="sandbox-search-key",
        deadline_seconds=5.0,
    )
    t0 = datetime.fromisoformat("2026-12-01T00:00:00+09:00")
    try:
        with pytest.raises(SearchError) as raised:
            await client.search_charges_page(
                ChargeQuery(updated_from=t0, updated_to=t0 + timedelta(days=8))
            )
    finally:
        await http.aclose()
    error = raised.value.error
    assert (error.code, error.kind, error.http_status) == ("ER400", ErrorKind.INVALID, 422)
    assert error.fields == ("updated_to",)
