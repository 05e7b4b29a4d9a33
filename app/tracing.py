"""OpenTelemetry tracing: off by default, on with the standard OTEL_* variables.

Tracing turns on when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP
endpoint is set (`OTEL_EXPORTER_OTLP_ENDPOINT` / `..._TRACES_ENDPOINT`); `OTEL_SDK_DISABLED=true`
wins over both. Everything else (service name, sampler, batch sizes, headers, excluded URLs)
is read by the SDK and instrumentations from their own standard variables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import httpx
from fastapi import FastAPI
from opentelemetry import metrics
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncEngine

from app.logging import scrub

log = logging.getLogger(__name__)

DEFAULT_SERVICE_NAME = "rp-merchant"


def exporter_names(env: Mapping[str, str] | None = None) -> list[str]:
    """The span exporters the environment asks for; empty means tracing is off."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [n for n in named if n and n != "none"]
    if env.get("OTEL_TRACES_EXPORTER", "").strip():
        return named
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return ["otlp"]
    return []


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
    raise ValueError(f"OTEL_TRACES_EXPORTER: unsupported exporter {name!r} (otlp, console)")


def make_provider(
    env: Mapping[str, str] | None = None, *, processor: SpanProcessor | None = None
) -> TracerProvider | None:
    """A tracer provider as the environment describes, or None when tracing is off.
    `processor` adds a span processor of the caller's (tests use an in-memory exporter)."""
    names = exporter_names(env)
    if not names and processor is None:
        return None
    env = os.environ if env is None else env
    resource = Resource.create(
        {SERVICE_NAME: env.get("OTEL_SERVICE_NAME", DEFAULT_SERVICE_NAME)}
    )  # plus OTEL_RESOURCE_ATTRIBUTES, which Resource.create merges in
    provider = TracerProvider(resource=resource)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)))
    if processor is not None:
        provider.add_span_processor(processor)
    log.info("tracing on: exporters %s", ", ".join(names) or "custom")
    return provider


_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full")


def _hide_kickback_secret(span: Span, scope: dict[str, Any]) -> None:
    """The trusted kickback path holds KICKBACK_SECRET: spans get the path without it."""
    if not str(scope.get("path", "")).startswith("/kickback/") or not span.is_recording():
        return
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, scrub(value))


def instrument_app(app: FastAPI, provider: TracerProvider) -> None:
    # Probes and scrapes would drown the traces that matter.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="healthz,readyz,metrics",
        server_request_hook=_hide_kickback_secret,
    )


def instrument_resources(
    provider: TracerProvider, engine: AsyncEngine, http: httpx.AsyncClient
) -> None:
    """Database queries and gateway calls become child spans of the request's span.
    Per engine and per client (not the global instrumentors, which patch create_engine
    process-wide and refuse a second app in the same process)."""
    tracer = provider.get_tracer("app.db")
    usage = metrics.get_meter("app.db").create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine.sync_engine, usage)  # type: ignore[no-untyped-call]
    HTTPXClientInstrumentor.instrument_client(http, tracer_provider=provider)
