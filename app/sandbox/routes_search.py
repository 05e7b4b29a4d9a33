"""Charges search API (seed 003): `POST api/v1.0/charges/search/order` accepts the filters and
returns {sid, tcnt}; `POST api/v1.0/charges/search` pages through that result set. JSON errors
`{"err": {"ec", "msg", "dtls"?}}`: ER400 bad parameters (with `dtls` of {dtlf, dtlmsgs}),
ER401 wrong `X-Payment-API-Key`, ER500 internal (the API's own code for ER000), ER520 when the rows
number `search_max_results` (54,000) or more, ER999 maintenance."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.sandbox.clock import JST
from app.sandbox.endpoint import sim_of
from app.sandbox.models import Transaction
from app.sandbox.state import SearchSession, SimState

log = logging.getLogger("app.sandbox")
router = APIRouter(prefix="/api/v1.0/charges")

JOBS = frozenset({"CHECK", "AUTH", "SALES", "CAPTURE", "CANCEL"})
MAX_RANGE = timedelta(days=7)
SEARCH_TTL = timedelta(days=1)
MAX_PAGE = 1000
_SORT_KEYS: dict[str, Callable[[Transaction], Any]] = {
    "ID": lambda t: t.gid,
    # No auto-charge number sorts first ascending (as SQL orders NULL), then by gid.
    "AutoChargeID": lambda t: (t.acid or 0, t.gid),
    "CreateDate": lambda t: (t.created_at, t.gid),
    "UpdatedDate": lambda t: (t.updated_at, t.gid),
}
_ERRORS: dict[str, tuple[int, str]] = {
    "ER400": (400, "入力に誤りがあります"),
    "ER401": (401, "認証に失敗しました"),
    "ER500": (500, "内部エラーが発生しました"),
    "ER520": (400, "対象データが多すぎるため、検索条件を見直して下さい"),
    "ER999": (503, "メンテナンス中です。しばらくお待ちください"),
}
INVALID = "無効な値です"
_BAD_BODY = {"dtlf": "body", "dtlmsgs": ["JSONの形式が不正です"]}


class SearchError(Exception):
    def __init__(self, code: str, dtls: list[dict[str, Any]] | None = None) -> None:
        super().__init__(code)
        self.code, self.dtls = code, dtls


def _error(code: str, dtls: list[dict[str, Any]] | None = None) -> JSONResponse:
    status, msg = _ERRORS[code]
    err: dict[str, Any] = {"ec": code, "msg": msg}
    if dtls:
        err["dtls"] = dtls
    return JSONResponse({"err": err}, status_code=status)


class Problems:
    """Collects ER400 details so one answer names every bad field."""

    def __init__(self) -> None:
        self.dtls: list[dict[str, Any]] = []

    def add(self, field: str, message: str = INVALID) -> None:
        self.dtls.append({"dtlf": field, "dtlmsgs": [message]})

    def raise_any(self) -> None:
        if self.dtls:
            raise SearchError("ER400", self.dtls)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # The seed's own sample repeats "srtf" for field and order: keep every value.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key == "srtf":
            out.setdefault("srtf*", []).append(value)
        out[key] = value
    return out


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_pairs_hook)
    except ValueError:  # includes UnicodeDecodeError
        raise SearchError("ER400", [_BAD_BODY]) from None
    if not isinstance(body, dict):
        raise SearchError("ER400", [_BAD_BODY])
    return body


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _date(body: dict[str, Any], name: str, problems: Problems) -> datetime | None:
    value = body.get(name)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) != 19:
            raise ValueError
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=JST)
    except ValueError:
        problems.add(name)
        return None


def _window(lo: datetime | None, hi: datetime | None, hi_name: str, problems: Problems) -> None:
    if lo and hi:
        if hi < lo:
            problems.add(hi_name, "開始日時以降の日時を指定してください")
        elif hi - lo > MAX_RANGE:
            problems.add(hi_name, "検索範囲は7日以内で指定してください")


@dataclass(frozen=True)
class _OrderFilter:
    """The filters of /search/order, checked (a 400 naming every bad field at once)."""

    isac: Any
    gid: Any
    acid: Any
    jobs: Any
    cdf: datetime | None
    cdt: datetime | None
    udf: datetime | None
    udt: datetime | None

    @classmethod
    def parse(cls, body: dict[str, Any]) -> _OrderFilter:
        problems = Problems()
        isac, gid, acid, jobs = body.get("isac"), body.get("gid"), body.get("acid"), body.get("jb")
        if isac is not None and not isinstance(isac, bool):
            problems.add("isac")
        if gid is not None and not _int(gid):
            problems.add("gid")
        if acid is not None and not _int(acid):
            problems.add("acid")
        if jobs is not None and not (
            isinstance(jobs, list) and all(isinstance(j, str) and j in JOBS for j in jobs)
        ):
            problems.add("jb")
        cdf, cdt = _date(body, "cdf", problems), _date(body, "cdt", problems)
        udf, udt = _date(body, "udf", problems), _date(body, "udt", problems)
        _window(cdf, cdt, "cdt", problems)
        _window(udf, udt, "udt", problems)
        problems.raise_any()
        return cls(isac, gid, acid, jobs, cdf, cdt, udf, udt)

    def match(self, t: Transaction) -> bool:
        # Seed 003 p.8: isac unset is false; false is every charge the gateway did not make
        # by itself (a recurring billing's first charge included), true only those it did.
        return (
            t.automatic is (self.isac is True)
            and (self.acid is None or t.acid == self.acid)
            and (self.gid is None or t.gid == self.gid)
            and (self.jobs is None or t.jb in self.jobs)
            and _within(t.created_at, self.cdf, self.cdt)
            and _within(t.updated_at, self.udf, self.udt)
        )


def _within(value: datetime, lo: datetime | None, hi: datetime | None) -> bool:
    # The API's times are whole seconds (seed 003: yyyy-MM-ddTHH:mm:ss, in and out): a
    # charge shown at 12:00:00 is within a range that ends at 12:00:00.
    value = value.replace(microsecond=0)
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _order(sim: SimState, body: dict[str, Any]) -> dict[str, Any]:
    wanted = _OrderFilter.parse(body)
    gids = [t.gid for t in sim.ledger.values() if wanted.match(t)]
    # Seed 003: 検索結果が54000件以上の場合はER520 (54,000 itself is refused).
    if len(gids) >= sim.config.search_max_results:
        raise SearchError("ER520")
    if not gids:
        return {"sid": None, "tcnt": 0}
    sid = str(uuid.uuid4())
    sim.searches[sid] = SearchSession(gids=gids, created_at=sim.clock.now())
    return {"sid": sid, "tcnt": len(gids)}


def _sort(srt: Any, problems: Problems) -> tuple[Callable[[Transaction], Any], bool]:
    if srt is None:
        return _SORT_KEYS["ID"], False
    if not isinstance(srt, dict):
        problems.add("srt")
        return _SORT_KEYS["ID"], False
    field, descending = "", False
    for value in [*srt.get("srtf*", [srt.get("srtf")]), srt.get("srto")]:
        if value is None:
            continue
        if isinstance(value, str) and value.upper() in ("ASC", "DESC"):
            descending = value.upper() == "DESC"
        elif isinstance(value, str) and value in _SORT_KEYS:
            field = value
        else:
            problems.add("srtf")
    if not field:
        problems.add("srtf", "必須項目です")
    return _SORT_KEYS.get(field, _SORT_KEYS["ID"]), descending


@dataclass(frozen=True)
class _PageRequest:
    """A page of a search session, checked (a 400 naming every bad field at once)."""

    sid: str
    session: SearchSession
    maxs: int
    idx: int
    key: Callable[[Transaction], Any]
    descending: bool

    @classmethod
    def parse(cls, sim: SimState, body: dict[str, Any]) -> _PageRequest:
        problems = Problems()
        sid, maxs, idx = body.get("sid"), body.get("maxs"), body.get("idx", 1)
        session = sim.searches.get(sid) if isinstance(sid, str) else None
        if session is None or sim.clock.now() - session.created_at > SEARCH_TTL:
            problems.add("sid", "必須項目です" if sid is None else INVALID)
        if not (isinstance(maxs, int) and _int(maxs) and 1 <= maxs <= MAX_PAGE):
            problems.add("maxs", "必須項目です" if maxs is None else INVALID)
        if idx is None:
            idx = 1
        if not _int(idx) or idx < 1:
            problems.add("idx")
        key, descending = _sort(body.get("srt"), problems)
        problems.raise_any()
        assert isinstance(sid, str) and session is not None
        assert isinstance(maxs, int) and isinstance(idx, int)
        return cls(sid, session, maxs, idx, key, descending)


def _search(sim: SimState, body: dict[str, Any]) -> dict[str, Any]:
    page_of = _PageRequest.parse(sim, body)
    maxs, idx = page_of.maxs, page_of.idx
    rows = sorted(
        (sim.ledger[g] for g in page_of.session.gids if g in sim.ledger),
        key=page_of.key,
        reverse=page_of.descending,
    )
    tidx = max(1, math.ceil(len(rows) / maxs))
    if idx > tidx:
        raise SearchError("ER400", [{"dtlf": "idx", "dtlmsgs": [INVALID]}])
    page = rows[(idx - 1) * maxs : idx * maxs]
    return {
        "sid": page_of.sid,
        "idx": idx,
        "tidx": tidx,
        "rcnt": len(page),
        "tcnt": len(rows),
        "dtls": [t.search_view() for t in page],
    }


Action = Callable[[SimState, dict[str, Any]], dict[str, Any]]


async def _run(request: Request, handler: Action) -> Response:
    sim = sim_of(request)
    try:
        if sim.maintenance:
            return _error("ER999")
        if request.headers.get("x-payment-api-key", "") != sim.config.search_api_key:
            return _error("ER401")
        body = await _body(request)
        if sim.config.search_slow_seconds:
            await asyncio.sleep(sim.config.search_slow_seconds)
        async with sim.lock:
            return JSONResponse(handler(sim, body))
    except SearchError as exc:
        return _error(exc.code, exc.dtls)
    except Exception:
        log.exception("search API failure")
        return _error("ER500")


@router.post("/search/order")
async def search_order(request: Request) -> Response:
    return await _run(request, _order)


@router.post("/search")
async def search(request: Request) -> Response:
    return await _run(request, _search)
