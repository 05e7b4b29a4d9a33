"""Logging: one format for the app and uvicorn, a request id on every line, and a filter
that scrubs card data, tokens and session ids (uvicorn's access lines too) before anything is
written."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.carddata import contains_card, redact_text

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)

_SECRET_PARAM = re.compile(r"(?i)\b(tkn|token|key|api_key)=([^&\s,;]+)")
# A checkout session id is a bearer capability (whoever has it may pay or see the page): logs
# keep enough of it to correlate lines, not to use it.
_SESSION_ID = re.compile(r"\b(cs_[0-9a-f]{8})[0-9a-f]{24}\b")
# An incoming X-Request-ID we take as it is; anything else is replaced by one of ours.
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The trusted kickback path carries KICKBACK_SECRET (access log lines, error logs).
_KICKBACK_SECRET_PATH = re.compile(r"/kickback/[^/?#\s\"']+")


def scrub(text: str) -> str:
    """Card data (app/carddata.py), secret parameters, the kickback secret and session ids
    out of a log line."""
    text = redact_text(text)
    text = _KICKBACK_SECRET_PATH.sub("/kickback/***", text)
    text = _SECRET_PARAM.sub(lambda m: f"{m.group(1)}=***", text)
    return _SESSION_ID.sub(lambda m: f"{m.group(1)}…", text)


def request_id_of(incoming: str) -> str:
    """The caller's X-Request-ID when it is a sane id holding no card data, else a new one:
    it is logged and stored with every payment event and gateway call."""
    if _SANE_REQUEST_ID.fullmatch(incoming) and not contains_card(incoming):
        return incoming
    return uuid.uuid4().hex


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# Attributes every LogRecord has; anything else on a record came from `extra=` and is data.
# (uvicorn adds `color_message`, the message again with terminal colour codes.)
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",
}


def _trace_ids() -> dict[str, str]:
    """The current OpenTelemetry trace/span ids, when tracing is on and a span is active."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - the package is a dependency
        return {}
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; `extra=` fields become keys (scrubbed like the message)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        out.update(_trace_ids())
        for name, value in vars(record).items():
            if name in _STANDARD_ATTRS or name in out or name.startswith("_"):
                continue
            if isinstance(value, str):
                value = scrub(value)
            elif not isinstance(value, int | float | bool | None):
                value = scrub(str(value))
            out[name] = value
        if record.exc_info:
            out["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def resolve_format(fmt: str) -> str:
    """`auto`: readable text in a terminal, JSON lines everywhere else (containers, CI)."""
    if fmt == "auto":
        return "text" if sys.stderr.isatty() else "json"
    return fmt


def setup_logging(level: str = "INFO", fmt: str = "auto") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ScrubFilter())
    if resolve_format(fmt) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        if name == "uvicorn.access" and not lg.propagate and not lg.handlers:
            continue  # uvicorn --no-access-log: keep it off
        lg.handlers = []
        lg.propagate = True
        # LOG_LEVEL is the one knob: uvicorn's own level would let INFO access lines through
        # a root set to WARNING (a propagated record skips its ancestors' levels).
        lg.setLevel(logging.NOTSET)


class RequestIdMiddleware:
    """Pure ASGI: takes X-Request-ID (or makes one), exposes it to logs, echoes it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        rid = request_id_of(incoming)
        token = request_id_var.set(rid)
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            scope.setdefault("state", {})["duration"] = time.perf_counter() - started
            request_id_var.reset(token)
