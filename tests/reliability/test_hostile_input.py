"""Hostile input: schemathesis over our own OpenAPI document against the app under a real
uvicorn (the CSP report collector included), the kickback endpoint fed random bytes, encodings,
sizes, methods and content types, and the CSP report collector fed random bodies, sizes and
content types by hypothesis (never a 5xx) and flooded (rate limited, a pay goes through).

Every answer must be documented (status code, content type, body schema) and none may be a 5xx.
Generation is derandomized, so a run is reproducible and bounded."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.kickbacks import service as kickbacks
from app.kickbacks.models import Kickback
from app.kickbacks.service import MAX_RAW
from app.sandbox.testing import make_token
from tests.support.fixtures import (
    KICKBACK_PATH,
    KICKBACK_SECRET,
    MERCHANT_KEY,
    OPS_KEY,
    AppFactory,
    RunningApp,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

# At least this many generated requests in total over all operations and both modes.
MIN_CASES = 2000
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "25"))
KEYS = {"merchant": MERCHANT_KEY, "ops": OPS_KEY}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def role_of(operation: dict[str, Any]) -> str | None:
    """The role an operation needs, from its security requirement's role names."""
    roles = {
        role for req in operation.get("security", []) for names in req.values() for role in names
    }
    assert len(roles) <= 1, roles
    return roles.pop() if roles else None


@dataclass
class FuzzReport:
    cases: int = 0
    by_operation: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    by_outcome: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    samples: dict[tuple[str, str, int], str] = field(default_factory=dict)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)


def _fuzz(
    ctx: _Target, operation: Any, strategy: Any, examples: int, label: str, phase: str
) -> None:
    @given(case=strategy)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case[Any]) -> None:
        response = case.call(
            base_url=ctx.base_url, session=ctx.http, headers=ctx.headers, timeout=30
        )
        report = ctx.report
        report.cases += 1
        report.by_operation[label] += 1
        report.statuses[response.status_code] += 1
        key = (label, phase, response.status_code)
        report.by_outcome[key] += 1
        report.samples.setdefault(key, response.text[:300])
        try:
            case.validate_response(response, checks=CHECKS, headers=ctx.headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                report.failures.setdefault((label, failure.title), str(group)[:3000])

    check()


@dataclass
class _Target:
    base_url: str
    http: requests.Session
    headers: dict[str, str]
    report: FuzzReport


def run_fuzz(
    doc: dict[str, Any], base_url: str, examples: int, seeded: dict[str, str]
) -> FuzzReport:
    """Every operation with positive then negative data, then (for operations on one object)
    positive data on real objects from `seeded` (path parameter values; deletions last).
    Failures are collected, not shrunk: one example kept per (operation, failure title)."""
    schema = schemathesis.openapi.from_dict(doc)
    report = FuzzReport()
    http = requests.Session()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()  # the document itself must be valid
        operations.append(result.ok())
    plan: list[tuple[Any, GenerationMode, dict[str, str] | None]] = [
        (op, mode, None)
        for op in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    on_objects = [op for op in operations if op.path_parameters]
    on_objects.sort(key=lambda op: op.method.upper() == "DELETE")
    for op in on_objects:
        names = [p.name for p in op.path_parameters]
        # A value for this path first ("<path> <name>"), else the one for that name.
        values = {n: seeded.get(f"{op.path} {n}", seeded.get(n, "")) for n in names}
        assert all(values.values()), f"seed() has no object for {op.path}"
        plan.append((op, GenerationMode.POSITIVE, values))

    for operation, mode, path_parameters in plan:
        role = role_of(doc["paths"][operation.path][operation.method.lower()])
        headers = {"Authorization": f"Bearer {KEYS[role]}"} if role else {}
        label = f"{operation.method.upper()} {operation.path}"
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
        target = _Target(base_url, http, headers, report)
        try:
            if path_parameters is None:
                _fuzz(target, operation, strategy, examples, label, mode.value)
            else:
                _fuzz(target, operation, strategy, max(examples // 3, 5), label, "seeded")
        except Unsatisfiable:
            # No way to make invalid data for an operation without inputs (e.g. /healthz).
            assert mode == GenerationMode.NEGATIVE, label
    return report


async def seed(app: RunningApp, sim: httpx.AsyncClient) -> dict[str, str]:
    """A customer with a card, an authorized checkout payment and an open session: real
    objects for the path parameters."""
    # A webhook endpoint first (nothing listens there: its deliveries are retried), so the
    # changes below are events with deliveries.
    r = await app.merchant.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/h"})
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["id"]
    uid = "fuzzcust1"
    r = await app.merchant.post("/v1/customers", json={"uid": uid, "email": "f@example.com"})
    assert r.status_code == 201, r.text
    zero = {"am": "0", "tx": "0", "sf": "0", "em": "f@example.com"}
    r = await app.merchant.post(
        f"/v1/customers/{uid}/cards", json={"token": await make_token(sim, three_ds=zero)}
    )
    assert r.status_code == 201, r.text
    num = str(r.json()["num"])
    session = {"amount": 1000, "job": "AUTH", "email": "f@example.com"}
    paid = (await app.merchant.post("/v1/checkout/sessions", json=session)).json()
    three_ds = {"am": "1000", "tx": "0", "sf": "0", "em": "f@example.com"}
    token = await make_token(sim, three_ds=three_ds)
    r = await app.client.post(f"/v1/checkout/sessions/{paid['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    open_ = (await app.merchant.post("/v1/checkout/sessions", json=session)).json()
    payment_id = r.json()["id"]

    # A billing-robo payer with a registered card, and an open billing card page.
    billing_code, tel = "B-FUZZ", "0312345678"
    payer: dict[str, Any] = {"billing_code": billing_code, "email": "f@example.com", "tel": tel}
    payer["payment_methods"] = [{"number": 1}]
    assert (await sim.post("/_sandbox/billing/payers", json=payer)).status_code == 200
    zero_billing = {**zero, "pn": tel}
    registration = {
        "billing_code": billing_code,
        "billing_payment_method_number": 1,
        "token": await make_token(sim, three_ds=zero_billing),
    }
    r = await app.merchant.post("/v1/billing/payment-methods/credit-card", json=registration)
    assert r.status_code == 201, r.text
    registration_id = r.json()["id"]
    page = {**{k: registration[k] for k in ("billing_code", "billing_payment_method_number")}}
    page |= {"email": "f@example.com", "tel": tel, "success_url": "https://shop.example/done"}
    r = await app.merchant.post("/v1/billing/card-sessions", json=page)
    assert r.status_code == 201, r.text
    event_id = (await app.merchant.get("/v1/events")).json()["data"][0]["id"]
    return {
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "uid": uid,
        "num": num,
        "payment_id": payment_id,
        "session_id": open_["id"],
        "registration_id": registration_id,
        "/v1/billing/card-sessions/{session_id} session_id": r.json()["id"],
        "secret": KICKBACK_SECRET,  # the trusted kickback path
    }


async def test_openapi_fuzz_finds_no_5xx_and_no_undocumented_answer(
    make_app: AppFactory, sim: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    app = await make_app()
    doc = (await app.client.get("/openapi.json")).json()
    seeded = await seed(app, sim)
    started = time.monotonic()
    # In a thread: schemathesis calls are blocking, and uvicorn serves on this event loop.
    report = await asyncio.to_thread(run_fuzz, doc, app.url, EXAMPLES_PER_OPERATION, seeded)
    elapsed = time.monotonic() - started
    with capsys.disabled():  # the counts belong in the CI log
        print(
            f"\nschemathesis: {report.cases} cases over {len(report.by_operation)} operations in "
            f"{elapsed:.1f} s; statuses {dict(sorted(report.statuses.items()))}"
        )
    if os.environ.get("FUZZ_DEBUG"):
        for key, n in sorted(report.by_outcome.items()):
            print(key, n, report.samples[key][:200].replace("\n", " "))
    problems = "\n\n".join(
        f"== {op}: {title}\n{text}" for (op, title), text in sorted(report.failures.items())
    )
    assert not report.failures, f"{len(report.failures)} failures:\n{problems}"
    assert report.cases >= MIN_CASES, report.by_operation


# --- the kickback endpoint -----------------------------------------------------------------

_FIELDS = {
    "gid": "123456789",
    "rst": "1",
    "ap": "1A2B3C",
    "ec": "",
    "god": "98765",
    "cod": "注文-テスト ",
    "am": "1000",
    "tx": "80",
    "sf": "0",
    "ta": "1080",
    "memo": "株式会社ロボット・ペイメント「テスト」",
}
_CONTENT_TYPES = [
    None,
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=Shift_JIS",
    "application/x-www-form-urlencoded; charset=UTF-8",
    "text/plain",
    "application/json",
    "application/octet-stream",
    "multipart/form-data; boundary=nothing-like-this",
    "multipart/form-data",
    "x/\u00ff\u00fe; charset=\u00e9",
    "",
]
_SIZES = [0, 1, 7, 100, 1024, 16 * 1024, 64 * 1024, 64 * 1024 + 1, 200 * 1024]


def _encoded(rng: random.Random, encoding: str) -> bytes:
    """A kickback-like form in one encoding, percent-encoded or raw, or garbage."""
    if encoding == "random":
        return rng.randbytes(rng.randint(0, 300))
    if encoding == "invalid":
        # Valid in neither UTF-8 nor CP932: lone lead bytes, a cut multibyte sequence.
        return b"gid=1&rst=1&cod=" + bytes([0x81, 0xFF, 0xE3, 0x81, 0x80, 0xFD]) + b"&am=%E3%81"
    fields = dict(rng.sample(sorted(_FIELDS.items()), rng.randint(0, len(_FIELDS))))
    pieces = []
    for key, value in fields.items():
        raw = value.encode(encoding, errors="replace")
        pieces.append(
            key.encode() + b"=" + (quote_from_bytes(raw).encode() if rng.random() < 0.7 else raw)
        )
    return b"&".join(pieces)


def _kickback_cases(count: int) -> list[tuple[str, bytes, bytes, str | None]]:
    """(method, query, body, content type), from a fixed seed: reproducible."""
    rng = random.Random(20261123)
    cases = []
    for i in range(count):
        encoding = ["utf-8", "cp932", "latin-1", "invalid", "random"][i % 5]
        payload = _encoded(rng, encoding)
        size = _SIZES[i % len(_SIZES)]
        if size > len(payload):
            payload = (payload + b"&pad=" + rng.randbytes(size))[:size]
        method = "GET" if i % 3 == 0 else "POST"
        # The query is sent percent-encoded (as any HTTP client must); the body as raw bytes.
        in_query = method == "GET" or i % 4 == 1
        query = quote_from_bytes(payload[:8192], safe="=&").encode() if in_query else b""
        body = payload if method == "POST" or i % 7 == 0 else b""
        cases.append((method, query, body, _CONTENT_TYPES[i % len(_CONTENT_TYPES)]))
    return cases


async def test_kickback_answers_200_to_anything_and_keeps_the_raw_bytes(
    make_app: AppFactory,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = await make_app()
    # Plus a well-formed notice whose order id holds a NUL (PostgreSQL text cannot).
    cases = [*_kickback_cases(220), ("GET", b"gid=1&rst=1&cod=x%00y&ta=1", b"", None)]
    sent_queries = []
    for method, query, body, content_type in cases:
        headers = {b"content-type": content_type.encode("latin-1")} if content_type else {}
        # The trusted path (an untrusted sender gets a budget, and this is 221 of them).
        url = httpx.URL(f"{app.url}{KICKBACK_PATH}", query=query)
        r = await app.client.request(method, url, content=body, headers=headers)
        assert r.status_code == 200, (method, query[:80], body[:80], content_type, r.text)
        assert r.text.strip(), "the gateway needs a non-empty body"
        sent_queries.append(r.request.url.query)
    # Every one was stored raw (none spooled, none lost), bytes as received up to the cap.
    async with sessions() as session:
        rows = (await session.execute(select(Kickback).order_by(Kickback.id))).scalars().all()
    assert len(rows) == len(cases)
    assert not any(app.settings.spool_dir.glob("*.jsonl"))
    for row, (method, _q, body, _ct), query in zip(rows, cases, sent_queries, strict=True):
        assert row.method == method
        assert bytes(row.raw_query) == query[:MAX_RAW]
        assert bytes(row.raw_body) == (body[:MAX_RAW] if method == "POST" else b"")
    # Each can be applied to an end (no poison row retried forever); applying is idempotent,
    # so this also waits for the applications the app started after answering.
    gateway = app.app.state.gateway
    verifier = app.app.state.kickback_verifier
    ends: Counter[str] = Counter()
    for row in rows:
        status = await kickbacks.apply(sessions, gateway, row.id, verifier=verifier)
        assert status in ("invalid", "unmatched", "duplicate", "flagged", "applied"), status
        ends[status] += 1
    with capsys.disabled():
        print(f"\nkickback fuzz: {len(cases)} requests, all 200 and stored; ends {dict(ends)}")


async def test_kickback_other_methods_are_refused_as_problems(make_app: AppFactory) -> None:
    # Only GET and POST exist (the gateway uses nothing else): others are a documented 405.
    app = await make_app()
    for method in ("PUT", "PATCH", "DELETE"):
        r = await app.client.request(method, "/kickback?gid=1&rst=1", content=b"gid=1")
        assert r.status_code == 405, r.text
        assert r.headers["content-type"] == "application/problem+json"


# --- the CSP report collector --------------------------------------------------------------

_CSP_TYPES = [
    "application/csp-report",
    "application/reports+json",
    "application/csp-report; charset=utf-8",
    "application/json",
    "text/plain",
    "",
    "application/reports+json\u00ff",
]
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner),
    max_leaves=20,
)
_report_like = st.fixed_dictionaries(
    {
        "csp-report": st.dictionaries(
            st.sampled_from(["document-uri", "blocked-uri", "effective-directive", "x"]),
            _json | st.text(max_size=300),
        )
    }
) | st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["csp-violation", "deprecation"]) | _json, "body": _json}
    ),
    max_size=60,
)
_csp_bodies = st.one_of(
    st.binary(max_size=2048),
    st.binary(min_size=16 * 1024 - 8, max_size=16 * 1024 + 8),
    _json.map(lambda v: json.dumps(v).encode()),
    _report_like.map(lambda v: json.dumps(v).encode()),
    st.text(max_size=500).map(lambda v: v.encode("utf-8", "surrogatepass")),
)


_VALID_CSP_REPORT = json.dumps(
    {
        "csp-report": {
            "document-uri": "http://127.0.0.1/checkout/x",
            "blocked-uri": "inline",
            "effective-directive": "script-src-elem",
        }
    }
).encode()


def run_csp_fuzz(base_url: str, examples: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    http = requests.Session()

    header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)

    # Half the draws carry a type the collector takes, so most bodies reach the parser.
    accepted = st.sampled_from(_CSP_TYPES[:3])

    # One sure example of each answer: what hypothesis draws depends on its version, and a run
    # that drew no valid report (CI once drew 302 bad types) proves nothing about the parser.
    @given(content_type=accepted | st.sampled_from(_CSP_TYPES) | header_text, body=_csp_bodies)
    @example(content_type="application/csp-report", body=_VALID_CSP_REPORT)
    @example(content_type="application/reports+json", body=b'[{"type": ')
    @example(content_type="application/csp-report", body=b"{" * (16 * 1024 + 1))
    @example(content_type="text/html", body=_VALID_CSP_REPORT)
    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(content_type: str, body: bytes) -> None:
        # Stripped: requests itself refuses a header value with leading whitespace (it would
        # never be sent, and the example would fail in the client, not the server).
        value = content_type.strip().encode("utf-8", "replace").decode("latin-1")
        headers = {"Content-Type": value}
        r = http.post(f"{base_url}/csp-reports", data=body, headers=headers, timeout=30)
        statuses[r.status_code] += 1
        # 422: a NUL in the body (app/input_guard.py, before any route).
        assert r.status_code in (204, 400, 413, 415, 422), (r.status_code, r.text[:300])
        if r.status_code != 204:
            assert r.headers["content-type"] == "application/problem+json", r.text[:300]

    check()
    return statuses


async def test_csp_reports_answer_anything_without_a_5xx(
    make_app: AppFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    # No budget here: every body reaches the parser (the limit has a test of its own).
    app = await make_app(csp_reports_per_client_per_minute=0, csp_reports_per_minute=0)
    statuses = await asyncio.to_thread(run_csp_fuzz, app.url, 400)
    with capsys.disabled():
        print(f"\ncsp-report fuzz: statuses {dict(sorted(statuses.items()))}")
    assert statuses[204] and statuses[400] and statuses[413] and statuses[415], statuses


async def test_a_csp_report_flood_is_limited_and_a_pay_from_another_client_goes_through(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    session = {"amount": 1000, "job": "AUTH", "email": "f@example.com"}
    cs = (await app.merchant.post("/v1/checkout/sessions", json=session)).json()
    token = await make_token(
        sim, three_ds={"am": "1000", "tx": "0", "sf": "0", "em": "f@example.com"}
    )
    report = json.dumps(
        {"csp-report": {"document-uri": f"{app.url}/checkout/x", "blocked-uri": "inline"}}
    ).encode()
    flooder = {"Content-Type": "application/csp-report", "X-Forwarded-For": "203.0.113.66"}

    async def flood() -> list[int]:
        codes = []
        for _ in range(10):
            batch = [
                app.client.post("/csp-reports", content=report, headers=flooder) for _ in range(30)
            ]
            codes += [r.status_code for r in await asyncio.gather(*batch)]
        return codes

    async def pay() -> httpx.Response:
        await asyncio.sleep(0.2)  # while the flood is on
        return await app.client.post(
            f"/v1/checkout/sessions/{cs['id']}/pay",
            json={"token": token},
            headers={"X-Forwarded-For": "198.51.100.23"},
        )

    codes, paid = await asyncio.gather(flood(), pay())
    assert paid.status_code == 200 and paid.json()["status"] == "authorized", paid.text
    # 30 a minute (and their refill while the flood lasts), then 429s.
    assert set(codes) == {204, 429} and codes.count(204) < 60, Counter(codes)
    # Another client's report is still taken.
    other = {"Content-Type": "application/csp-report", "X-Forwarded-For": "198.51.100.24"}
    assert (await app.client.post("/csp-reports", content=report, headers=other)).status_code == 204
