"""Charges search API (seed 003): paging, 7-day windows, ER520 narrowing, typed failures."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.gateway import codes as errors
from app.gateway.base import ChargeRecord, ChargeStatus, GatewayCall, SearchError
from app.gateway.robotpayment import RobotPaymentClient
from app.gateway.robotpayment.search import JST, split_windows

API_KEY = "a31200ac90ba49789248-1fd48d654e97"
T0 = datetime(2026, 1, 1, tzinfo=JST)


def row(gid: int, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "gid": gid, "acid": None, "jb": "CAPTURE", "ct": 1, "cn4": "1111", "am": 500, "tx": 0,
        "sf": 0, "ta": 500, "rst": 1, "ec": "", "cod": "", "nad": None,
        "cd": "2026-01-02T14:15:27", "vd": None,
    }  # fmt: skip
    data.update(overrides)
    return data


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


class FakeSearchApi:
    """Orders and pages like the real API; `rows_for(query)` decides what a search holds."""

    def __init__(self, rows_for: Any, *, page_size: int = 1000) -> None:
        self.rows_for = rows_for
        self.page_size = page_size
        self.orders: list[dict[str, Any]] = []
        self.pages: list[dict[str, Any]] = []
        self.headers: list[httpx.Headers] = []
        self._searches: dict[str, list[dict[str, Any]]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.headers.append(request.headers)
        body = json.loads(request.content)
        if request.url.path.endswith("/v1.0/charges/search/order"):
            self.orders.append(body)
            rows = self.rows_for(body)
            if isinstance(rows, httpx.Response):
                return rows
            if not rows:
                return _json(200, {"sid": None, "tcnt": 0})
            sid = f"sid-{len(self.orders)}"
            self._searches[sid] = rows
            return _json(200, {"sid": sid, "tcnt": len(rows)})
        assert request.url.path.endswith("/v1.0/charges/search")
        self.pages.append(body)
        rows = self._searches[body["sid"]]
        size = min(body["maxs"], self.page_size)
        chunk = rows[(body["idx"] - 1) * size : body["idx"] * size]
        tidx = -(-len(rows) // size)
        return _json(
            200,
            {"sid": body["sid"], "idx": body["idx"], "tidx": tidx, "rcnt": len(chunk),
             "tcnt": len(rows), "dtls": chunk},
        )  # fmt: skip


def make_client(
    handler: Any, *, search_http: httpx.AsyncClient | None = None
) -> tuple[RobotPaymentClient, list[GatewayCall]]:
    calls: list[GatewayCall] = []

    async def record(call: GatewayCall) -> None:
        calls.append(call)

    client = RobotPaymentClient(
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        base_url="https://gw.test",
        aid="123456",
        search_base_url="https://api.test/",
        search_api_key=API_KEY,
        search_http=search_http,
        recorder=record,
        retry_delays=(0, 0),
    )
    return client, calls


async def test_orders_then_pages_through_every_index() -> None:
    api = FakeSearchApi(lambda q: [row(i) for i in range(1, 2501)])
    client, calls = make_client(api)
    records = await client.search_charges(
        created_from=T0, created_to=T0 + timedelta(days=1), jobs=["AUTH", "CAPTURE"], charge_id=None
    )
    assert len(records) == 2500
    assert api.orders == [
        {"jb": ["AUTH", "CAPTURE"], "cdf": "2026-01-01T00:00:00", "cdt": "2026-01-02T00:00:00"}
    ]
    assert api.pages == [{"sid": "sid-1", "maxs": 1000, "idx": i} for i in (1, 2, 3)]
    assert all(h["x-payment-api-key"] == API_KEY for h in api.headers)
    assert all(h["content-type"] == "application/json" for h in api.headers)
    assert [c.operation for c in calls] == ["search_order"] + ["search_page"] * 3
    assert calls[0].endpoint == "https://api.test/v1.0/charges/search/order"
    assert API_KEY not in repr(calls)


async def test_rows_are_typed_and_jst_aware() -> None:
    api = FakeSearchApi(
        lambda q: [
            row(100028, acid=1000000008, nad="2018-04-01T00:00:00", ec="G55", cod="ord1"),
            row(100029, cd="2026-01-02T05:15:27+00:00", vd="2026-01-03T00:00:00", am="700"),
        ]
    )
    client, _ = make_client(api)
    first, second = await client.search_charges(charge_id=100028)
    assert api.orders == [{"gid": 100028}]
    assert first == ChargeRecord(
        charge_id=100028, status=ChargeStatus.CAPTURED, recurring_id=1000000008, job="CAPTURE",
        card_brand=1, brand="visa", card_last4="1111", amount=500, tax=0, shipping=0, total=500,
        result_code=1, error=errors.lookup("G55"), order_ref="ord1",
        next_charge_at=datetime(2018, 4, 1, tzinfo=JST),
        created_at=datetime(2026, 1, 2, 14, 15, 27, tzinfo=JST), canceled_at=None,
    )  # fmt: skip
    assert second.created_at == datetime(2026, 1, 2, 14, 15, 27, tzinfo=JST)
    assert second.created_at is not None and second.created_at.utcoffset() == timedelta(hours=9)
    assert second.canceled_at == datetime(2026, 1, 3, tzinfo=JST)
    assert second.amount == 700 and second.error is None and second.order_ref is None


async def test_no_result_stops_after_the_order() -> None:
    api = FakeSearchApi(lambda q: [])
    client, _ = make_client(api)
    assert await client.search_charges(created_from=T0, created_to=T0 + timedelta(hours=1)) == []
    assert len(api.orders) == 1 and api.pages == []


async def test_long_ranges_are_split_into_seven_day_windows() -> None:
    api = FakeSearchApi(lambda q: [row(int(q["cdf"][8:10]))])
    client, _ = make_client(api)
    records = await client.search_charges(created_from=T0, created_to=T0 + timedelta(days=20))
    assert [(o["cdf"], o["cdt"]) for o in api.orders] == [
        ("2026-01-01T00:00:00", "2026-01-08T00:00:00"),
        ("2026-01-08T00:00:00", "2026-01-15T00:00:00"),
        ("2026-01-15T00:00:00", "2026-01-21T00:00:00"),
    ]
    assert [r.charge_id for r in records] == [1, 8, 15]


async def test_datetimes_are_sent_in_jst() -> None:
    api = FakeSearchApi(lambda q: [])
    client, _ = make_client(api)
    await client.search_charges(
        created_from=datetime(2026, 1, 1, 0, 0, 0, 500, tzinfo=UTC),  # floors
        created_to=datetime(2026, 1, 1, 10, 0, 0, 1, tzinfo=JST),  # ceils
    )
    assert api.orders == [{"cdf": "2026-01-01T09:00:00", "cdt": "2026-01-01T10:00:01"}]


async def test_naive_datetimes_are_refused_before_any_request() -> None:
    api = FakeSearchApi(lambda q: [])
    client, _ = make_client(api)
    with pytest.raises(ValueError, match="timezone-aware"):
        await client.search_charges(created_from=datetime(2026, 1, 1))
    assert api.orders == []


async def test_one_sided_ranges_are_not_split() -> None:
    api = FakeSearchApi(lambda q: [])
    client, _ = make_client(api)
    await client.search_charges(created_from=T0 - timedelta(days=400))
    await client.search_charges(created_to=T0)
    assert api.orders == [{"cdf": "2024-11-27T00:00:00"}, {"cdt": "2026-01-01T00:00:00"}]


async def test_inverted_range_is_empty() -> None:
    api = FakeSearchApi(lambda q: [])
    client, _ = make_client(api)
    assert await client.search_charges(created_from=T0, created_to=T0 - timedelta(days=1)) == []
    assert api.orders == []


async def test_duplicates_on_window_boundaries_are_dropped() -> None:
    shared = row(7, cd="2026-01-08T00:00:00")
    api = FakeSearchApi(lambda q: [shared, row(int(q["cdf"][8:10]) * 100)])
    client, _ = make_client(api)
    records = await client.search_charges(created_from=T0, created_to=T0 + timedelta(days=14))
    assert [r.charge_id for r in records] == [7, 100, 800]


def _too_many() -> httpx.Response:
    return _json(400, {"err": {"ec": "ER520", "msg": "対象データ最大件数エラー"}})


async def test_er520_halves_the_window_until_it_fits() -> None:
    def rows_for(q: dict[str, Any]) -> Any:
        start = datetime.fromisoformat(q["cdf"])
        end = datetime.fromisoformat(q["cdt"])
        if end - start > timedelta(days=2):
            return _too_many()
        return [row(int(start.timestamp()))]

    api = FakeSearchApi(rows_for)
    client, _ = make_client(api)
    records = await client.search_charges(created_from=T0, created_to=T0 + timedelta(days=6))
    windows = [(o["cdf"], o["cdt"]) for o in api.orders]
    assert windows == [
        ("2026-01-01T00:00:00", "2026-01-07T00:00:00"),
        ("2026-01-01T00:00:00", "2026-01-04T00:00:00"),
        ("2026-01-01T00:00:00", "2026-01-02T12:00:00"),
        ("2026-01-02T12:00:00", "2026-01-04T00:00:00"),
        ("2026-01-04T00:00:00", "2026-01-07T00:00:00"),
        ("2026-01-04T00:00:00", "2026-01-05T12:00:00"),
        ("2026-01-05T12:00:00", "2026-01-07T00:00:00"),
    ]
    assert len(records) == 4


async def test_er520_that_cannot_be_narrowed_is_a_search_error() -> None:
    api = FakeSearchApi(lambda q: _too_many())
    client, _ = make_client(api)
    with pytest.raises(SearchError) as info:
        await client.search_charges(created_from=T0)
    assert info.value.error.code == "ER520"
    with pytest.raises(SearchError):
        await client.search_charges(created_from=T0, created_to=T0 + timedelta(seconds=30))


@pytest.mark.parametrize(
    ("code", "status", "stable", "attempts"),
    [
        ("ER400", 400, "search_invalid_request", 1),
        ("ER401", 401, "search_auth_failed", 1),
        ("ER999", 503, "maintenance", 1),
        ("ER500", 500, "search_internal_error", 3),
    ],
)
async def test_api_errors_are_typed(code: str, status: int, stable: str, attempts: int) -> None:
    body = {"err": {"ec": code, "msg": "x", "dtls": [{"dtlf": "cdf", "dtlmsgs": ["無効な値です"]}]}}
    api = FakeSearchApi(lambda q: _json(status, body))
    client, _ = make_client(api)
    with pytest.raises(SearchError) as info:
        await client.search_charges(charge_id=1)
    assert info.value.error.stable_code == stable
    assert len(api.orders) == attempts


async def test_er500_recovers_on_retry() -> None:
    answers = [_json(500, {"err": {"ec": "ER500", "msg": "x"}})]

    def rows_for(q: dict[str, Any]) -> Any:
        return answers.pop() if answers else [row(1)]

    api = FakeSearchApi(rows_for)
    client, _ = make_client(api)
    assert [r.charge_id for r in await client.search_charges(charge_id=1)] == [1]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (httpx.ConnectError("refused"), "connect_error"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), "http_error"),
        (httpx.Response(200, text="not json"), "bad_response"),
    ],
)
async def test_transport_failures_are_retried_then_raised(
    failure: Exception | httpx.Response, code: str
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(failure, Exception):
            raise failure
        return failure

    client, calls = make_client(handler)
    with pytest.raises(SearchError) as info:
        await client.search_charges(charge_id=1)
    assert info.value.error.code == code
    assert len(seen) == len(calls) == 3


async def test_malformed_page_is_retried_then_raised() -> None:
    pages: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/order"):
            return _json(200, {"sid": "s", "tcnt": 1})
        pages.append(request)
        return _json(200, {"sid": "s", "idx": 1, "tidx": 1, "dtls": "x"})

    client, _ = make_client(handler)
    with pytest.raises(SearchError) as info:
        await client.search_charges(charge_id=1)
    assert info.value.error.code == "bad_response"
    assert len(pages) == 3


async def test_unreadable_row_is_an_error_not_a_silent_skip() -> None:
    api = FakeSearchApi(lambda q: [row(1), {"jb": "AUTH"}])
    client, _ = make_client(api)
    with pytest.raises(SearchError) as info:
        await client.search_charges(charge_id=1)
    assert info.value.error.code == "bad_response"


async def test_separate_search_http_client_is_used() -> None:
    api = FakeSearchApi(lambda q: [row(1)])

    def gateway(request: httpx.Request) -> httpx.Response:
        raise AssertionError("search must not use the gateway client")

    client, _ = make_client(
        gateway, search_http=httpx.AsyncClient(transport=httpx.MockTransport(api))
    )
    assert len(await client.search_charges(charge_id=1)) == 1


def test_split_windows() -> None:
    assert split_windows(None, T0) == [(None, T0)]
    assert split_windows(T0, T0 + timedelta(days=7)) == [(T0, T0 + timedelta(days=7))]
    windows = split_windows(T0, T0 + timedelta(days=7, seconds=1))
    assert windows == [
        (T0, T0 + timedelta(days=7)),
        (T0 + timedelta(days=7), T0 + timedelta(days=7, seconds=1)),
    ]
