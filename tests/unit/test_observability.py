"""Log formatting and the OTEL_* switch, without I/O."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.logging import (
    JsonFormatter,
    ScrubFilter,
    request_id_var,
    resolve_format,
    scrub,
    setup_logging,
)
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


def test_card_numbers_are_masked_but_ids_with_digit_runs_are_not() -> None:
    assert scrub("cn 4111111111111111 end") == "cn ************1111 end"
    assert scrub("cn=4111111111111111&x") == "cn=***&x"
    assert scrub('{"card": "4111111111111111"}') == '{"card": "************1111"}'
    # Hex ids hold long digit runs now and then; they stay whole.
    for ident in ("pay_3ba1234567890123456f00d", "cs_1234567890123456", "x4111111111111111"):
        assert scrub(f"payment {ident} paid") == f"payment {ident} paid"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = [
        (lg, lg.handlers[:], lg.propagate, lg.level) for lg in (logging.getLogger(n) for n in names)
    ]
    yield None
    for lg, handlers, propagate, level in saved:
        lg.handlers, lg.propagate = handlers, propagate
        lg.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_log_level_governs_uvicorn_and_a_disabled_access_log_stays_off() -> None:
    access = logging.getLogger("uvicorn.access")
    access.setLevel(logging.INFO)  # as uvicorn's own configuration leaves it
    access.handlers, access.propagate = [], True
    setup_logging("WARNING", "json")
    assert not access.isEnabledFor(logging.INFO), "access lines pass a WARNING root"
    assert logging.getLogger("uvicorn.error").isEnabledFor(logging.WARNING)

    # uvicorn --no-access-log: no handlers and no propagation; setup must not undo that.
    access.handlers, access.propagate = [], False
    setup_logging("INFO", "json")
    assert access.propagate is False
