"""The charges search API (決済WebAPI v1.0, seed 003): order a search, then page through it.

The API limits a search with both ends to 7 days and refuses one matching 54,000 payments or
more (ER520); both limits are handled here so callers can ask for any range.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx

from app.gateway import codes as errors
from app.gateway.base import (
    ChargePage,
    ChargeQuery,
    ChargeRecord,
    ChargeSearchLimits,
    ChargeSort,
    ChargeStatus,
    ErrorKind,
    GatewayErrorInfo,
    Outcome,
    SearchError,
)
from app.gateway.masking import mask_header_value
from app.gateway.robotpayment.codec import CodecError, to_int
from app.gateway.transport import (
    Exchange,
    Exchanger,
    Interpreter,
    Verdict,
    require_2xx,
)

P = TypeVar("P")

# Japan has no DST, so a fixed offset is exact and needs no tz database.
JST = timezone(timedelta(hours=9), "JST")
MAX_WINDOW = timedelta(days=7)
# Below this an ER520 cannot be helped by narrowing the time range any further.
MIN_WINDOW = timedelta(minutes=1)
PAGE_SIZE = 1000
# 54,000 rows at most (ER520 from 54,000) is 54 pages; anything far above is a broken answer.
MAX_PAGES = 60
# Seed 003 p.7: 検索結果が54000件以上の場合はER520.
MAX_RESULTS = 54_000
LIMITS = ChargeSearchLimits(max_range=MAX_WINDOW, max_per_page=PAGE_SIZE, max_results=MAX_RESULTS)
ORDER_PATH = "/v1.0/charges/search/order"
PAGE_PATH = "/v1.0/charges/search"
_FORMAT = "%Y-%m-%dT%H:%M:%S"


@dataclass(frozen=True, slots=True)
class _Order:
    sid: str | None
    tcnt: int


@dataclass(frozen=True, slots=True)
class _Page:
    tidx: int
    rows: list[ChargeRecord]


class _TooMany(Exception):
    def __init__(self, error: GatewayErrorInfo) -> None:
        super().__init__(error.code)
        self.error = error


# --- JSON decoding (raises CodecError on anything unexpected) ----------------------------


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CodecError("not JSON") from exc
    if not isinstance(data, dict):
        raise CodecError("not a JSON object")
    return data


def _int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CodecError(f"{name} is not a number")
    if isinstance(value, int):
        return value
    parsed = to_int(value) if isinstance(value, str) else None
    if parsed is None:
        raise CodecError(f"{name} is not a number")
    return parsed


def _str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int):
        raise CodecError(f"{name} is not text")
    return str(value)


def _datetime(data: dict[str, Any], name: str) -> datetime | None:
    value = _str(data, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CodecError(f"{name} is not a date-time") from exc
    return parsed.replace(tzinfo=JST) if parsed.tzinfo is None else parsed.astimezone(JST)


def charge_status(rst: int | None, jb: str | None) -> ChargeStatus:
    """Seed 003 `rst`: 1 success, 2 not processed yet, 3 waiting, 4 failed, 5 error (the rest
    are convenience-store and postal codes that never apply to a card). `jb` is the job as
    the charge stands now: AUTH/CHECK, SALES/CAPTURE once captured, CANCEL once canceled."""
    if rst in (4, 5):
        return ChargeStatus.FAILED
    if rst != 1:
        return ChargeStatus.UNSETTLED
    match (jb or "").upper():
        case "CANCEL":
            return ChargeStatus.CANCELED
        case "SALES" | "CAPTURE":
            return ChargeStatus.CAPTURED
        case "AUTH" | "CHECK":
            return ChargeStatus.AUTHORIZED
        case _:
            return ChargeStatus.UNSETTLED


# Seed 003 p.11 `ct`; 0 (クレカ以外) and unknown codes have no brand.
_BRANDS = {1: "visa", 2: "mastercard", 3: "jcb", 4: "amex", 5: "diners", 6: "discover"}


def _error(row: dict[str, Any]) -> GatewayErrorInfo | None:
    code = _str(row, "ec")
    return errors.lookup(code) if code else None


def parse_charge_record(row: Any) -> ChargeRecord:
    if not isinstance(row, dict):
        raise CodecError("row is not an object")
    gid = _int(row, "gid")
    if gid is None:
        raise CodecError("row without gid")
    rst, jb, ct = _int(row, "rst"), _str(row, "jb"), _int(row, "ct")
    return ChargeRecord(
        charge_id=gid,
        status=charge_status(rst, jb),
        recurring_id=_int(row, "acid"),
        job=jb,
        card_brand=ct,
        brand=_BRANDS.get(ct) if ct is not None else None,
        card_last4=_str(row, "cn4"),
        amount=_int(row, "am"),
        tax=_int(row, "tx"),
        shipping=_int(row, "sf"),
        total=_int(row, "ta"),
        result_code=rst,
        error=_error(row),
        order_ref=_str(row, "cod"),
        next_charge_at=_datetime(row, "nad"),
        created_at=_datetime(row, "cd"),
        canceled_at=_datetime(row, "vd"),
    )


def _api_error(data: dict[str, Any]) -> Verdict[Any] | None:
    """`{"err": {"ec", "msg", "dtls"}}`, sent with any HTTP status."""
    err = data.get("err")
    if err is None:
        return None
    if not isinstance(err, dict) or not isinstance(err.get("ec"), str):
        raise CodecError("malformed err object")
    code = err["ec"].strip()
    outcome = Outcome.UNAVAILABLE if code in ("ER500", "ER999") else Outcome.FAILED
    # The wire names of the fields an ER400 is about; ChargeSearch._post translates them.
    error = replace(errors.lookup(code), fields=_detail_fields(err.get("dtls")))
    # ER500 is an internal hiccup worth another try; ER999 (maintenance) lasts too long.
    return Verdict(outcome, error, None, retry=code == "ER500")


def _detail_fields(dtls: Any) -> tuple[str, ...]:
    """Seed 003 p.14 names the detail's field `dtlf`, its sample (p.15) `dtlfl`: either."""
    if not isinstance(dtls, list):
        return ()
    names = (d.get("dtlf", d.get("dtlfl")) for d in dtls if isinstance(d, dict))
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str)))


def _body(status: int, text: str) -> tuple[dict[str, Any], Verdict[Any] | None]:
    try:
        data = _json_object(text)
    except CodecError:
        require_2xx(status)  # a non-JSON 5xx is a transport-level failure, not garbage
        raise
    error = _api_error(data)
    if error is None:
        require_2xx(status)
    return data, error


def interpret_order(status: int, text: str) -> Verdict[_Order]:
    data, error = _body(status, text)
    if error is not None:
        return error
    sid = data.get("sid")
    if sid is not None and not isinstance(sid, str):
        raise CodecError("sid is not text")
    return Verdict(Outcome.SUCCESS, None, _Order(sid or None, _int(data, "tcnt") or 0))


def interpret_page(status: int, text: str) -> Verdict[_Page]:
    data, error = _body(status, text)
    if error is not None:
        return error
    rows = data.get("dtls") or []
    if not isinstance(rows, list):
        raise CodecError("dtls is not a list")
    page = _Page(_int(data, "tidx") or 1, [parse_charge_record(row) for row in rows])
    return Verdict(Outcome.SUCCESS, None, page)


# --- one page for ops (ChargeQuery) ----------------------------------------------------------

# Seed 003 p.11 srtf values.
_SORT_FIELDS = {
    ChargeSort.CHARGE_ID: "ID",
    ChargeSort.RECURRING_ID: "AutoChargeID",
    ChargeSort.CREATED_AT: "CreateDate",
    ChargeSort.UPDATED_AT: "UpdatedDate",
}
# The wire fields of seed 003 pp.8, 11 by ChargeQuery's names, for an ER400's details.
QUERY_FIELDS = {
    "isac": "automatic",
    "gid": "charge_id",
    "acid": "recurring_id",
    "jb": "jobs",
    "cdf": "created_from",
    "cdt": "created_to",
    "udf": "updated_from",
    "udt": "updated_to",
    "srt": "sort",
    "srtf": "sort",
    "maxs": "per_page",
    "idx": "page",
}


def _second(value: datetime | None) -> str | None:
    """The API's yyyy-MM-ddTHH:mm:ss in JST: its times are whole seconds, so both ends are
    cut to the second (an inclusive end then still covers its own second)."""
    return None if value is None else to_jst(value).strftime(_FORMAT)


def order_body(query: ChargeQuery) -> dict[str, Any]:
    """Seed 003 p.8. isac is always sent: its default (false) leaves automatic charges out,
    and saying so keeps the request's meaning in the audit row."""
    body: dict[str, Any] = {"isac": query.automatic}
    if query.charge_id is not None:
        body["gid"] = query.charge_id
    if query.recurring_id is not None:
        body["acid"] = query.recurring_id
    if query.jobs:
        body["jb"] = list(query.jobs)
    for name, value in (
        ("cdf", query.created_from),
        ("cdt", query.created_to),
        ("udf", query.updated_from),
        ("udt", query.updated_to),
    ):
        text = _second(value)
        if text is not None:
            body[name] = text
    return body


def sort_json(query: ChargeQuery) -> str:
    """Seed 003's srt exactly as its sample (p.13) writes it: `srtf` twice, the field then
    the order (the table, p.11, names both `srtf`; no other name has a source). A dict
    cannot hold that, so it is written by hand."""
    field = json.dumps(_SORT_FIELDS[query.sort])
    order = json.dumps("DESC" if query.descending else "ASC")
    return f'{{"srtf": {field}, "srtf": {order}}}'


# --- time windows ------------------------------------------------------------------------


def to_jst(value: datetime) -> datetime:
    """The gateway's clock. A naive datetime is refused, as the database layer does: guessing
    its zone would silently shift a reconciliation window by nine hours."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("search_charges needs timezone-aware datetimes")
    return value.astimezone(JST)


def _floor(value: datetime | None) -> datetime | None:
    return None if value is None else to_jst(value).replace(microsecond=0)


def _ceil(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    jst = to_jst(value)
    return jst.replace(microsecond=0) + timedelta(seconds=1 if jst.microsecond else 0)


def split_windows(
    start: datetime | None, end: datetime | None, size: timedelta = MAX_WINDOW
) -> list[tuple[datetime | None, datetime | None]]:
    """Consecutive windows of at most `size`; both ends are inclusive at the API, so
    neighbours share their boundary second and the caller drops exact duplicates."""
    if start is None or end is None:
        return [(start, end)]
    windows: list[tuple[datetime | None, datetime | None]] = []
    while end - start > size:
        windows.append((start, start + size))
        start += size
    windows.append((start, end))
    return windows


def _unique(rows: list[ChargeRecord]) -> list[ChargeRecord]:
    return list(dict.fromkeys(rows))


class ChargeSearch:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        exchanger: Exchanger,
        base_url: str,
        api_key: str,
        read_timeout: float | None = None,
    ) -> None:
        self._http = http
        self._exchanger = exchanger
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._read_timeout = read_timeout

    async def search(
        self,
        *,
        created_from: datetime | None,
        created_to: datetime | None,
        gid: int | None,
        jobs: Sequence[str] | None,
    ) -> list[ChargeRecord]:
        start, end = _floor(created_from), _ceil(created_to)  # ValueError if naive
        if start is not None and end is not None and start > end:
            return []
        rows: list[ChargeRecord] = []
        for window_start, window_end in split_windows(start, end):
            rows.extend(await self._window(window_start, window_end, gid, jobs))
        return _unique(rows)

    async def page(self, query: ChargeQuery) -> ChargePage:
        """Orders a fresh search (search/order), then reads the asked page of it (search)."""
        body = order_body(query)  # ValueError if a datetime is naive
        order = await self._post(
            "search_order", ORDER_PATH, body, interpret_order, fields=QUERY_FIELDS
        )
        if order.sid is None or order.tcnt == 0:
            return ChargePage(rows=[], page=query.page, pages=0, total=0)
        pages = math.ceil(order.tcnt / query.per_page)
        if query.page > pages:
            # The API answers ER400 (idx) for it: the caller learns the totals instead.
            return ChargePage(rows=[], page=query.page, pages=pages, total=order.tcnt)
        request = {"sid": order.sid, "maxs": query.per_page, "idx": query.page}
        content = json.dumps(request)[:-1] + f', "srt": {sort_json(query)}}}'
        page = await self._post(
            "search_page",
            PAGE_PATH,
            {**request, "srt": sort_json(query)},
            interpret_page,
            fields=QUERY_FIELDS,
            content=content.encode("utf-8"),
        )
        return ChargePage(rows=page.rows, page=query.page, pages=page.tidx, total=order.tcnt)

    async def _window(
        self,
        start: datetime | None,
        end: datetime | None,
        gid: int | None,
        jobs: Sequence[str] | None,
    ) -> list[ChargeRecord]:
        try:
            return await self._fetch(start, end, gid, jobs)
        except _TooMany as exc:
            if start is None or end is None or end - start <= MIN_WINDOW:
                raise SearchError(exc.error) from None
            middle = (start + (end - start) / 2).replace(microsecond=0)
            first = await self._window(start, middle, gid, jobs)
            return first + await self._window(middle, end, gid, jobs)

    async def _fetch(
        self,
        start: datetime | None,
        end: datetime | None,
        gid: int | None,
        jobs: Sequence[str] | None,
    ) -> list[ChargeRecord]:
        query: dict[str, Any] = {}
        if gid is not None:
            query["gid"] = gid
        if jobs:
            query["jb"] = list(jobs)
        if start is not None:
            query["cdf"] = start.strftime(_FORMAT)
        if end is not None:
            query["cdt"] = end.strftime(_FORMAT)
        order = await self._post("search_order", ORDER_PATH, query, interpret_order)
        if order.sid is None or order.tcnt == 0:
            return []
        rows: list[ChargeRecord] = []
        index, last = 1, 1
        while index <= last:
            body = {"sid": order.sid, "maxs": PAGE_SIZE, "idx": index}
            page = await self._post("search_page", PAGE_PATH, body, interpret_page)
            if index == 1:
                last = page.tidx
                if last > MAX_PAGES:
                    raise SearchError(errors.lookup(errors.BAD_RESPONSE))
            rows.extend(page.rows)
            index += 1
        return rows

    async def _post(
        self,
        operation: str,
        path: str,
        body: dict[str, Any],
        interpret: Interpreter[P],
        *,
        fields: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> P:
        """`fields`: the wire fields that come from the caller's query, by its names (an
        ER400 about them is the caller's invalid value); `content`: the body when `body`
        (then what the audit shows) cannot be written by json.dumps."""
        exchange = Exchange(
            operation=operation,
            url=self._base_url + path,
            content=content or json.dumps(body, ensure_ascii=False).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-Payment-API-Key": self._api_key,
            },
            masked_request={
                "X-Payment-API-Key": mask_header_value(self._api_key),
                **{k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()},
            },
            mutating=False,
            read_timeout=self._read_timeout,
        )
        verdict, _call = await self._exchanger.run(self._http, exchange, interpret)
        if verdict.parsed is not None:
            return verdict.parsed
        error = _for_caller(verdict.error or errors.lookup(errors.BAD_RESPONSE), fields)
        if error.code == "ER520" and fields is None:
            raise _TooMany(error)
        raise SearchError(error)


def _for_caller(error: GatewayErrorInfo, fields: Mapping[str, str] | None) -> GatewayErrorInfo:
    """An ER400 about fields of the caller's query is an invalid query (422, naming them in
    the query's words); any other (sid, maxs we chose) stays our own misconfiguration."""
    named = tuple(dict.fromkeys(fields[f] for f in error.fields if f in fields)) if fields else ()
    if error.code != "ER400" or not named:
        return replace(error, fields=())
    return replace(
        error,
        fields=named,
        http_status=errors.INVALID,
        kind=ErrorKind.INVALID,
        message_en=f"The gateway's charges search refused {', '.join(named)}.",
        message_ja=f"決済情報検索が次の条件を受け付けませんでした: {', '.join(named)}。",
    )
