"""Log formatting and the OTEL_* switch, without I/O."""

from __future__ import annotations

import json
import logging

import pytest

from app.logging import JsonFormatter, ScrubFilter, request_id_var, resolve_format
from app.tracing import exporter_names


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
    ],
)
def test_tracing_switch_follows_standard_variables(
    env: dict[str, str], expected: list[str]
) -> None:
    assert exporter_names(env) == expected


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "t", "levelno": 20, "levelname": "INFO", "msg": msg, "args": args, **extra}
    )
    ScrubFilter().filter(record)
    return record


def test_json_lines_carry_request_id_and_extra_fields_scrubbed() -> None:
    token = request_id_var.set("rid-42")
    try:
        record = _record(
            "paid %s",
            "4111111111111111",
            operation="charge_token",
            latency_ms=12.5,
            note="tkn=abc",
            color_message="\x1b[36mpaid\x1b[0m",
        )
    finally:
        request_id_var.reset(token)
    line = JsonFormatter().format(record)
    out = json.loads(line)
    assert out["request_id"] == "rid-42"
    assert out["msg"] == "paid ************1111"
    assert out["operation"] == "charge_token" and out["latency_ms"] == 12.5
    assert out["note"] == "tkn=***"
    assert "color_message" not in out
    assert "\n" not in line


def test_auto_format_is_json_off_a_terminal() -> None:
    # pytest captures stderr, so it is not a terminal here.
    assert resolve_format("auto") == "json"
    assert resolve_format("text") == "text"
