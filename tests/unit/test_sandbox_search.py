"""Charges search API (seed 003): search/order + search paging, filters, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.sandbox import SandboxConfig, cards, create_sandbox_app
from app.sandbox.clock import JST
from app.sandbox.testing import pay_by_token

ORDER_URL = "api/v1.0/charges/search/order"
SEARCH_URL = "api/v1.0/charges/search"
KEY = {"X-Payment-API-Key": "sandbox-search-key"}
FMT = "%Y-%m-%dT%H:%M:%S"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


async def order(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(ORDER_URL, json=body, headers=KEY)


async def search(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post(SEARCH_URL, json=body, headers=KEY)


async def all_rows(client: httpx.AsyncClient, filters: dict[str, Any]) -> list[dict[str, Any]]:
    accepted = (await order(client, filters)).json()
    if accepted["sid"] is None:
        return []
    page = (await search(client, {"sid": accepted["sid"], "maxs": 1000})).json()
    rows: list[dict[str, Any]] = page["dtls"]
    return rows


async def test_wrong_key_is_er401(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"X-Payment-API-Key": "nope"}):
        response = await client.post(ORDER_URL, json={}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"err": {"ec": "ER401", "msg": "認証に失敗しました"}}
    response = await client.post(SEARCH_URL, json={"sid": "x", "maxs": 1})
    assert response.json()["err"]["ec"] == "ER401"


async def test_paging_and_row_shape(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await pay_by_token(client, am=100 * (i + 1), cod=f"o{i}")
    accepted = (await order(client, {})).json()
    assert accepted["tcnt"] == 5 and isinstance(accepted["sid"], str)
    pages = []
    for idx in (1, 2, 3):
        page = (await search(client, {"sid": accepted["sid"], "maxs": 2, "idx": idx})).json()
        summary = (page["sid"], page["idx"], page["tidx"], page["tcnt"])
        assert summary == (accepted["sid"], idx, 3, 5)
        assert page["rcnt"] == len(page["dtls"])
        pages.append(page["dtls"])
    assert [len(p) for p in pages] == [2, 2, 1]
    row = pages[0][0]
    assert list(row) == [
        "gid",
        "acid",
        "jb",
        "ct",
        "cn4",
        "am",
        "tx",
        "sf",
        "ta",
        "rst",
        "ec",
        "cod",
        "nad",
        "cd",
        "vd",
    ]
    assert row | {"cd": None} == {
        "gid": 10000001,
        "acid": None,
        "jb": "CAPTURE",
        "ct": 1,
        "cn4": "1111",
        "am": 100,
        "tx": 0,
        "sf": 0,
        "ta": 100,
        "rst": 1,
        "ec": "",
        "cod": "o0",
        "nad": None,
        "cd": None,
        "vd": None,
    }
    datetime.strptime(row["cd"], FMT)
    beyond = await search(client, {"sid": accepted["sid"], "maxs": 2, "idx": 4})
    assert beyond.json()["err"]["ec"] == "ER400"


async def test_state_declines_and_jb_filter(client: httpx.AsyncClient) -> None:
    auth = (await pay_by_token(client, jb="AUTH")).text.split(",")[0]
    await pay_by_token(client, card=cards.CARD_DECLINE_G55)
    canceled = (await pay_by_token(client, jb="CAPTURE")).text.split(",")[0]
    ops = {"aid": "100001", "rt": "1"}
    await client.post("gateway/gateway.aspx", data={**ops, "jb": "SALES", "tid": auth})
    await client.post("gateway/gateway.aspx", data={**ops, "jb": "CANCEL", "tid": canceled})
    rows = await all_rows(client, {})
    assert [(r["jb"], r["rst"], r["ec"]) for r in rows] == [
        ("SALES", 1, ""),
        ("CAPTURE", 4, "G55"),
        ("CANCEL", 1, ""),
    ]
    assert rows[2]["vd"] is not None and rows[0]["vd"] is None
    assert [r["gid"] for r in await all_rows(client, {"jb": ["SALES", "CANCEL"]})] == [
        int(auth),
        int(canceled),
    ]
    assert await all_rows(client, {"jb": ["AUTH"]}) == []
    assert [r["gid"] for r in await all_rows(client, {"gid": int(auth)})] == [int(auth)]
    assert await all_rows(client, {"isac": True}) == []
    assert len(await all_rows(client, {"isac": False})) == 3


async def test_empty_result_has_null_sid(client: httpx.AsyncClient) -> None:
    assert (await order(client, {})).json() == {"sid": None, "tcnt": 0}


async def test_date_filters_and_the_7_day_rule(client: httpx.AsyncClient) -> None:
    await pay_by_token(client)
    now = datetime.now(JST)
    day = timedelta(days=1)
    window = {"cdf": (now - 3 * day).strftime(FMT), "cdt": (now + 4 * day).strftime(FMT)}
    assert (await order(client, window)).json()["tcnt"] == 1
    later = {"cdf": (now + day).strftime(FMT), "cdt": (now + 2 * day).strftime(FMT)}
    assert (await order(client, later)).json()["tcnt"] == 0
    assert (await order(client, {"cdf": (now - 400 * day).strftime(FMT)})).json()["tcnt"] == 1
    assert (await order(client, {"udt": (now - day).strftime(FMT)})).json()["tcnt"] == 0

    too_wide = {"cdf": (now - 4 * day).strftime(FMT), "cdt": (now + 4 * day).strftime(FMT)}
    response = await order(client, too_wide)
    assert response.status_code == 400
    err = response.json()["err"]
    assert err["ec"] == "ER400" and err["msg"] and err["dtls"][0]["dtlf"] == "cdt"
    wide_updates = {"udf": "2025-01-01T00:00:00", "udt": "2025-01-09T00:00:00"}
    assert (await order(client, wide_updates)).json()["err"]["dtls"][0]["dtlf"] == "udt"
    reversed_ = {"cdf": "2025-01-09T00:00:00", "cdt": "2025-01-01T00:00:00"}
    assert (await order(client, reversed_)).json()["err"]["ec"] == "ER400"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cdf": "2025/01/01 00:00:00"}, "cdf"),
        ({"cdt": "2025-01-01"}, "cdt"),
        ({"jb": ["REFUND"]}, "jb"),
        ({"jb": "AUTH"}, "jb"),
        ({"gid": "10000001"}, "gid"),
        ({"isac": "yes"}, "isac"),
        ({"acid": 1.5}, "acid"),
    ],
)
async def test_bad_order_parameters(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    err = (await order(client, body)).json()["err"]
    assert err["ec"] == "ER400" and [d["dtlf"] for d in err["dtls"]] == [field]
    assert err["dtls"][0]["dtlmsgs"]


async def test_too_many_results_is_er520(client: httpx.AsyncClient) -> None:
    """Seed 003: ER520 at search_max_results (54,000) results or more, not only above it."""
    await client.post("_sandbox/config", json={"search_max_results": 3})
    for _ in range(2):
        await pay_by_token(client)
    assert (await order(client, {})).json()["tcnt"] == 2
    await pay_by_token(client)
    response = await order(client, {})
    assert response.json()["err"]["ec"] == "ER520"
    assert (await order(client, {"gid": 10000001})).json()["tcnt"] == 1


async def test_sorting(client: httpx.AsyncClient) -> None:
    for _ in range(3):
        await pay_by_token(client)
    sid = (await order(client, {})).json()["sid"]
    # The seed's sample repeats "srtf" for the field and the order: both values count.
    raw = f'{{"sid": "{sid}", "maxs": 10, "srt": {{"srtf": "ID", "srtf": "DESC"}}}}'
    response = await client.post(
        SEARCH_URL, content=raw, headers={**KEY, "content-type": "application/json"}
    )
    assert [r["gid"] for r in response.json()["dtls"]] == [10000003, 10000002, 10000001]
    body = {"sid": sid, "maxs": 10, "srt": {"srtf": "CreateDate", "srto": "ASC"}}
    assert [r["gid"] for r in (await search(client, body)).json()["dtls"]] == [
        10000001,
        10000002,
        10000003,
    ]
    bad = (await search(client, {"sid": sid, "maxs": 10, "srt": {"srtf": "Amount"}})).json()
    assert bad["err"]["ec"] == "ER400"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"maxs": 10}, "sid"),
        ({"sid": "no-such-search", "maxs": 10}, "sid"),
        ({"sid": "<sid>", "maxs": 1001}, "maxs"),
        ({"sid": "<sid>", "maxs": 0}, "maxs"),
        ({"sid": "<sid>"}, "maxs"),
        ({"sid": "<sid>", "maxs": 5, "idx": 0}, "idx"),
    ],
)
async def test_bad_search_parameters(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await pay_by_token(client)
    sid = (await order(client, {})).json()["sid"]
    body = {k: sid if v == "<sid>" else v for k, v in body.items()}
    err = (await search(client, body)).json()["err"]
    assert err["ec"] == "ER400" and field in [d["dtlf"] for d in err["dtls"]]


async def test_search_id_expires_after_a_day(client: httpx.AsyncClient) -> None:
    await pay_by_token(client)
    sid = (await order(client, {})).json()["sid"]
    await client.post("_sandbox/clock", json={"advance_seconds": 86401})
    assert (await search(client, {"sid": sid, "maxs": 5})).json()["err"]["ec"] == "ER400"


async def test_unreadable_body_and_maintenance(client: httpx.AsyncClient) -> None:
    response = await client.post(ORDER_URL, content=b"{not json", headers=KEY)
    assert response.json()["err"]["ec"] == "ER400"
    await client.post("_sandbox/maintenance", json={"on": True})
    response = await order(client, {})
    assert response.status_code == 503 and response.json()["err"]["ec"] == "ER999"
