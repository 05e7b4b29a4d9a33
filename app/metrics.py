"""Prometheus metrics the service exports (names are part of the ops contract)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from app.gateway.base import GatewayCall

GATEWAY_CALLS = Counter(
    "rp_gateway_calls_total", "Gateway calls by operation and outcome", ["operation", "outcome"]
)
GATEWAY_LATENCY = Histogram(
    "rp_gateway_call_seconds",
    "Gateway call latency",
    ["operation"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)


def observe_gateway_call(call: GatewayCall) -> None:
    GATEWAY_CALLS.labels(call.operation, str(call.outcome)).inc()
    GATEWAY_LATENCY.labels(call.operation).observe(call.latency_ms / 1000)
