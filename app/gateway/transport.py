"""One HTTP exchange with the gateway: deadline, failure classification, retries, recording.

The key question for every failure is whether the request may have reached the gateway.
Connection failures prove it did not, so they are retried for every call. Anything after
the request may have left (read timeout, broken response, 5xx, unreadable body) is UNKNOWN
for calls that change something and is never retried for them; read-only calls retry it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import httpx

from app.gateway import codes as errors
from app.gateway.base import CallRecorder, GatewayCall, GatewayErrorInfo, Outcome, record_call
from app.gateway.http import call_deadline
from app.gateway.masking import mask_text
from app.gateway.text import CodecError, decode_bytes

log = logging.getLogger(__name__)

P = TypeVar("P")

# Failures that prove the request never reached the gateway (the billing-robo client too).
NEVER_SENT: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ProxyError,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.InvalidURL,
)
# Timeouts once the request may be on the wire (asyncio's for the overall deadline).
TIMEOUTS: tuple[type[Exception], ...] = (httpx.TimeoutException, TimeoutError)
# Audit rows stay bounded even if a proxy answers with a large HTML page.
MAX_RECORDED_BODY = 100_000


@dataclass(frozen=True, slots=True)
class Verdict(Generic[P]):
    """What an answer means: the outcome, the error if any, and the decoded payload."""

    outcome: Outcome
    error: GatewayErrorInfo | None = None
    parsed: P | None = None
    # For read-only calls: worth asking again (transient failure).
    retry: bool = False


class UnexpectedStatus(Exception):
    """Raised by interpreters for an HTTP status they do not understand."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def require_2xx(status: int) -> None:
    if not 200 <= status < 300:
        raise UnexpectedStatus(status)


# Turns (HTTP status, decoded body) into a verdict; raises CodecError or UnexpectedStatus.
Interpreter = Callable[[int, str], Verdict[P]]


def _failure(code: str, outcome: Outcome, *, retry: bool) -> Verdict[P]:
    return Verdict(outcome, errors.lookup(code), None, retry)


@dataclass(frozen=True, slots=True)
class Exchange:
    """The request to send and how to read its answer."""

    operation: str
    url: str
    content: bytes
    headers: Mapping[str, str]
    masked_request: dict[str, str]
    # True when the call changes something at the gateway (money, users, cards).
    mutating: bool
    ref: str | None = None
    # How the answer is scrubbed for the audit log (card numbers always; keys per layout).
    mask_response: Callable[[str], str] = mask_text
    # A read that may wait longer than the client's default (the charges search: no shopper
    # waits on it, and a timed-out search only postpones a kickback or a check).
    read_timeout: float | None = None


class Exchanger:
    def __init__(
        self,
        *,
        recorder: CallRecorder | None,
        deadline_seconds: float,
        retry_delays: Sequence[float],
    ) -> None:
        self._recorder = recorder
        self._deadline = deadline_seconds
        self._retry_delays = tuple(retry_delays)

    async def run(
        self, http: httpx.AsyncClient, exchange: Exchange, interpret: Interpreter[P]
    ) -> tuple[Verdict[P], GatewayCall]:
        """Sends, retrying what may be retried; records every attempt. Never raises for
        transport or parsing problems."""
        attempt = 0
        while True:
            verdict, call = await self._attempt(http, exchange, interpret)
            await record_call(self._recorder, call)
            if not verdict.retry or attempt >= len(self._retry_delays):
                return verdict, call
            await asyncio.sleep(self._retry_delays[attempt])
            attempt += 1

    async def _attempt(
        self, http: httpx.AsyncClient, exchange: Exchange, interpret: Interpreter[P]
    ) -> tuple[Verdict[P], GatewayCall]:
        started_at = datetime.now(UTC)
        start = time.perf_counter()
        status: int | None = None
        text: str | None = None
        verdict: Verdict[P]
        deadline = self._deadline
        # The client's timeouts unless this exchange has its own read timeout.
        own: httpx.Timeout | None = None
        if exchange.read_timeout is not None:
            base = http.timeout
            own = httpx.Timeout(
                connect=base.connect, read=exchange.read_timeout, write=base.write, pool=base.pool
            )
            deadline = max(deadline, call_deadline(base.connect, exchange.read_timeout))
        headers = dict(exchange.headers)
        try:
            # Some transports (in-process ASGI) ignore httpx timeouts: bound it ourselves.
            async with asyncio.timeout(deadline):
                response = await (
                    http.post(exchange.url, content=exchange.content, headers=headers)
                    if own is None
                    else http.post(
                        exchange.url, content=exchange.content, headers=headers, timeout=own
                    )
                )
        except NEVER_SENT as exc:
            log.warning("%s: gateway not reached: %r", exchange.operation, exc)
            verdict = _failure(errors.CONNECT_ERROR, Outcome.UNAVAILABLE, retry=True)
        except TIMEOUTS as exc:
            log.warning("%s: gateway timed out: %r", exchange.operation, exc)
            verdict = self._maybe_sent(exchange, errors.TIMEOUT_CODE)
        except Exception as exc:
            # Broken connection, protocol error, or an in-process app that raised: the
            # request may have been processed.
            log.warning("%s: gateway exchange failed: %r", exchange.operation, exc)
            verdict = self._maybe_sent(exchange, errors.HTTP_ERROR)
        else:
            status = response.status_code
            text = decode_bytes(response.content)
        latency_ms = (time.perf_counter() - start) * 1000
        if status is not None and text is not None:
            verdict = self._interpret(exchange, interpret, status, text)
        call = GatewayCall(
            operation=exchange.operation,
            endpoint=exchange.url,
            request=exchange.masked_request,
            http_status=status,
            response_body=(
                exchange.mask_response(text[:MAX_RECORDED_BODY]) if text is not None else None
            ),
            latency_ms=latency_ms,
            outcome=verdict.outcome,
            error_code=verdict.error.code if verdict.error else None,
            ref=exchange.ref,
            started_at=started_at,
        )
        return verdict, call

    def _interpret(
        self, exchange: Exchange, interpret: Interpreter[P], status: int, text: str
    ) -> Verdict[P]:
        try:
            return interpret(status, text)
        except UnexpectedStatus as exc:
            if exc.status >= 500:
                return self._maybe_sent(exchange, errors.HTTP_ERROR)
            # 3xx/4xx: refused before any processing (wrong URL, a proxy's refusal...).
            return _failure(errors.HTTP_ERROR, Outcome.FAILED, retry=False)
        except CodecError as exc:
            log.warning("%s: unreadable gateway answer: %s", exchange.operation, exc)
        except Exception:
            # A bug of ours must not turn into an exception after money may have moved.
            log.exception("%s: could not interpret the gateway answer", exchange.operation)
        if exchange.mutating:
            return _failure(errors.BAD_RESPONSE, Outcome.UNKNOWN, retry=False)
        return _failure(errors.BAD_RESPONSE, Outcome.FAILED, retry=True)

    @staticmethod
    def _maybe_sent(exchange: Exchange, code: str) -> Verdict[P]:
        if exchange.mutating:
            return _failure(code, Outcome.UNKNOWN, retry=False)
        return _failure(code, Outcome.UNAVAILABLE, retry=True)
