"""The charges search API (決済WebAPI v1.0, seed 003): order a search, then page through it.

The API limits a search with both ends to 7 days and refuses one matching 54,000 payments or
more (ER520); both limits are handled here so callers can ask for any range.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx

from app.gateway import codes as errors
from app.gateway.base import ChargeRecord, ChargeStatus, GatewayErrorInfo, Outcome, SearchError
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


def _error(row: dict[str, Any]) -> GatewayErrorInfo | None:
    code = _str(row, "ec")
    return errors.lookup(code) if code else None


def parse_charge_record(row: Any) -> ChargeRecord:
    if not isinstance(row, dict):
        raise CodecError("row is not an object")
    gid = _int(row, "gid")
    if gid is None:
        raise CodecError("row without gid")
    rst, jb = _int(row, "rst"), _str(row, "jb")
    return ChargeRecord(
        charge_id=gid,
        status=charge_status(rst, jb),
        recurring_id=_int(row, "acid"),
        job=jb,
        card_brand=_int(row, "ct"),
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
    # ER500 is an internal hiccup worth another try; ER999 (maintenance) lasts too long.
    return Verdict(outcome, errors.lookup(code), None, retry=code == "ER500")


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
        self, operation: str, path: str, body: dict[str, Any], interpret: Interpreter[P]
    ) -> P:
        exchange = Exchange(
            operation=operation,
            url=self._base_url + path,
            content=json.dumps(body, ensure_ascii=False).encode("utf-8"),
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
        error = verdict.error or errors.lookup(errors.BAD_RESPONSE)
        if error.code == "ER520":
            raise _TooMany(error)
        raise SearchError(error)
