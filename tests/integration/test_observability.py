"""What an operator sees: Prometheus metrics, request ids from the API to the audit rows,
and OpenTelemetry traces spanning the request, its queries and its gateway call."""

from __future__ import annotations

import re

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import GatewayCallLog
from app.payments.models import PaymentEvent
from app.sandbox.testing import make_token
from app.tracing import make_provider
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.support.fixtures import AppFactory

pytestmark = pytest.mark.integration


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, or 0 when it is absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_show_gateway_payments_and_routes_without_ids(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    paid = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert paid.status_code == 200, paid.text
    await app.client.post("/kickback", params={"gid": "1", "rst": "1"})

    r = await app.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert (
        metric(
            text,
            "rp_gateway_call_seconds_count",
            operation="charge_token",
            outcome="success",
        )
        >= 1
    )
    assert metric(text, "rp_db_payments", status="authorized") == 1
    assert metric(text, "rp_db_payments_unknown") == 0
    assert metric(text, "rp_kickbacks_received_total", result="stored") >= 1
    assert (
        metric(
            text,
            "rp_http_request_seconds_count",
            method="POST",
            route="/v1/checkout/sessions/{session_id}/pay",
            status="2xx",
        )
        >= 1
    )
    assert metric(text, "rp_payment_transitions_total", from_status="pending") >= 1
    # Labels never carry ids: no session, payment or gid in the exposition.
    assert cs["id"] not in text and paid.json()["id"] not in text
    gid = (await app.ops.get(f"/v1/payments/{paid.json()['id']}")).json()["gid"]
    assert gid and str(gid) not in text


async def test_request_id_reaches_gateway_calls_and_events(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(
        f"/v1/checkout/sessions/{cs['id']}/pay",
        json={"token": token},
        headers={"X-Request-ID": "rid-follow-me-1"},
    )
    assert r.status_code == 200 and r.headers["x-request-id"] == "rid-follow-me-1"
    async with sessions() as s:
        calls = list((await s.execute(select(GatewayCallLog.request_id))).scalars())
        events = list((await s.execute(select(PaymentEvent.request_id))).scalars())
    assert calls == ["rid-follow-me-1"]
    assert events and set(events) == {"rid-follow-me-1"}
    detail = (await app.ops.get(f"/v1/payments/{r.json()['id']}")).json()
    assert detail["gateway_calls"][0]["request_id"] == "rid-follow-me-1"


async def test_one_trace_spans_request_queries_and_gateway_call(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    exporter = InMemorySpanExporter()
    provider = make_provider({}, processor=SimpleSpanProcessor(exporter))
    assert isinstance(provider, TracerProvider)
    app = await make_app(tracer_provider=provider)
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    exporter.clear()
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text

    spans = exporter.get_finished_spans()
    [server] = [
        s
        for s in spans
        if s.kind == SpanKind.SERVER and s.attributes and "/pay" in str(s.attributes)
    ]
    trace_id = server.context.trace_id
    same_trace = [s for s in spans if s.context.trace_id == trace_id]
    clients = [s for s in same_trace if s.kind == SpanKind.CLIENT]
    assert any("gateway_token.aspx" in str(s.attributes) for s in clients), clients
    assert any(
        (s.attributes or {}).get("db.system") == "postgresql"
        or (s.attributes or {}).get("db.system.name") == "postgresql"
        for s in clients
    )
    # The token never ends up in a span.
    assert token not in str([s.to_json() for s in spans])


def test_tracing_is_off_without_otel_variables() -> None:
    assert make_provider({}) is None
    assert make_provider({"OTEL_TRACES_EXPORTER": "none"}) is None
