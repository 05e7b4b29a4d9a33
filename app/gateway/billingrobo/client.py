"""BillingRoboClient: registers a tokenized card on a billing-robo payer (seed 001).

`POST {base}/api/v1.0/billing_payment_method/credit_card_token`, JSON, credentials in the
body. Success is `{"error": null}`; every error is `{"error": {"code", "message"}}`, with
HTTP 200 (gateway `ER…` codes), 400 (the API's own codes), 401 (login, key, source IP) or 503
(maintenance), so the body is always read, whatever the status. Every exchange goes to the
gateway-call audit log (the same recorder as the card gateway) with the token and the access
key masked.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from app.gateway import codes as rp_errors
from app.gateway.base import (
    BillingCardRegistration,
    BillingCardResult,
    CallRecorder,
    GatewayCall,
    GatewayErrorInfo,
    Outcome,
    record_call,
)
from app.gateway.billingrobo import errors
from app.gateway.masking import mask_header_value, mask_text, mask_token
from app.gateway.text import decode_bytes
from app.gateway.transport import MAX_RECORDED_BODY, NEVER_SENT, TIMEOUTS

log = logging.getLogger(__name__)

CREDIT_CARD_TOKEN_PATH = "api/v1.0/billing_payment_method/credit_card_token"
OPERATION = "billing_register_card"


@dataclass(frozen=True, slots=True)
class Answer:
    """What one exchange means; `retry_after` is set only for a 429 (seconds, or None when
    billing robo gave no usable Retry-After)."""

    outcome: Outcome
    error: GatewayErrorInfo | None = None
    rate_limited: bool = False
    retry_after: float | None = None


def _failure(code: str, outcome: Outcome) -> Answer:
    return Answer(outcome, errors.lookup(code))


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def interpret(status: int, text: str) -> Answer:
    """(HTTP status, body) -> Answer. An answer we cannot read is UNKNOWN: the card may or
    may not have been registered, and it is never reported as a success."""
    if status == 429:
        # 429 comes before any processing (the limit is per source IP), body or not.
        return Answer(Outcome.UNAVAILABLE, errors.lookup(errors.RATE_LIMITED), rate_limited=True)
    data: Any
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or "error" not in data:
        if status >= 500 or 200 <= status < 300:
            synthetic = rp_errors.HTTP_ERROR if status >= 500 else rp_errors.BAD_RESPONSE
            return _failure(synthetic, Outcome.UNKNOWN)
        # 3xx/4xx without the API's body: a proxy or a wrong URL refused it unprocessed.
        return _failure(rp_errors.HTTP_ERROR, Outcome.FAILED)
    error = data["error"]
    if error is None:
        if 200 <= status < 300:
            return Answer(Outcome.SUCCESS)
        return _failure(rp_errors.BAD_RESPONSE, Outcome.UNKNOWN)
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, bool) or not isinstance(code, int | str) or not str(code).strip():
        return _failure(rp_errors.BAD_RESPONSE, Outcome.UNKNOWN)
    return Answer(errors.outcome_for(code), errors.lookup(code))


class BillingRoboClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        user_id: str,
        access_key: str,
        recorder: CallRecorder | None = None,
        deadline_seconds: float = 40.0,
        max_attempts: int = 3,
        backoff: Sequence[float] = (2.0, 5.0),
        max_wait_seconds: float = 15.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{CREDIT_CARD_TOKEN_PATH}"
        self._user_id = user_id
        self._access_key = access_key
        self._recorder = recorder
        self._deadline = deadline_seconds
        self._max_attempts = max(1, max_attempts)
        self._backoff = tuple(backoff) or (1.0,)
        self._max_wait = max_wait_seconds
        self._sleep = sleep

    async def register_credit_card(
        self, request: BillingCardRegistration, *, ref: str | None = None
    ) -> BillingCardResult:
        body = self._body(request)
        content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        masked = self._masked(body)
        attempt = 1
        while True:
            answer, call = await self._attempt(content, masked, ref)
            await record_call(self._recorder, call)
            # Only a 429 is retried. It means "not processed" (the limit is checked before
            # anything else), so the same single-use token is still unused and sending it
            # again cannot register anything twice. Any other failure either was an answer
            # (retrying would repeat it, or find the token used) or may have been processed.
            # A refused connection is not processed either, but it is reported at once: the
            # caller sees "unavailable" and may try again, and the request stays short.
            if not answer.rate_limited or attempt >= self._max_attempts:
                return BillingCardResult(
                    outcome=answer.outcome, error=answer.error, call=call, attempts=attempt
                )
            base = self._backoff[min(attempt - 1, len(self._backoff) - 1)]
            wanted = answer.retry_after if answer.retry_after is not None else base
            if wanted > self._max_wait:
                # Billing robo says the limit lasts longer than we may keep the caller
                # waiting: give up now rather than wait and fail anyway.
                return BillingCardResult(
                    outcome=answer.outcome, error=answer.error, call=call, attempts=attempt
                )
            log.warning(
                "billing robo rate limit (429); retrying in %.1f s (attempt %d of %d)",
                wanted,
                attempt + 1,
                self._max_attempts,
            )
            await self._sleep(wanted)
            attempt += 1

    # --- plumbing ------------------------------------------------------------------------

    def _body(self, request: BillingCardRegistration) -> dict[str, Any]:
        body: dict[str, Any] = {
            "user_id": self._user_id,
            "access_key": self._access_key,
            "billing_code": request.billing_code,
        }
        # Exactly one is sent; the caller validated that (both would be 3404).
        if request.payment_method_number is not None:
            body["billing_payment_method_number"] = request.payment_method_number
        if request.payment_method_code is not None:
            body["billing_payment_method_code"] = request.payment_method_code
        body["token"] = request.token
        if request.email:
            body["email"] = request.email
        if request.tel:
            body["tel"] = request.tel
        return body

    def _masked(self, body: dict[str, Any]) -> dict[str, str]:
        masked: dict[str, str] = {}
        for name, value in body.items():
            if name == "token":
                masked[name] = mask_token(str(value))
            elif name == "access_key":
                masked[name] = mask_header_value(str(value))
            else:
                masked[name] = mask_text(str(value))
        return masked

    async def _attempt(
        self, content: bytes, masked: dict[str, str], ref: str | None
    ) -> tuple[Answer, GatewayCall]:
        started_at = datetime.now(UTC)
        start = time.perf_counter()
        status: int | None = None
        text: str | None = None
        answer: Answer
        try:
            # In-process (ASGI) transports ignore httpx timeouts: bound it ourselves.
            async with asyncio.timeout(self._deadline):
                response = await self._http.post(
                    self._url,
                    content=content,
                    headers={"Content-Type": "application/json", "Accept": "application/json"},
                )
        except NEVER_SENT as exc:
            log.warning("billing robo not reached: %r", exc)
            answer = _failure(rp_errors.CONNECT_ERROR, Outcome.UNAVAILABLE)
        except TIMEOUTS as exc:
            log.warning("billing robo timed out: %r", exc)
            answer = _failure(rp_errors.TIMEOUT_CODE, Outcome.UNKNOWN)
        except Exception as exc:
            log.warning("billing robo exchange failed: %r", exc)
            answer = _failure(rp_errors.HTTP_ERROR, Outcome.UNKNOWN)
        else:
            status = response.status_code
            text = decode_bytes(response.content)
            try:
                answer = interpret(status, text)
            except Exception:
                # A bug of ours must not turn an answer into an exception (or a success).
                log.exception("could not interpret the billing robo answer")
                answer = _failure(rp_errors.BAD_RESPONSE, Outcome.UNKNOWN)
            if answer.rate_limited:
                answer = Answer(
                    answer.outcome,
                    answer.error,
                    rate_limited=True,
                    retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                )
        latency_ms = (time.perf_counter() - start) * 1000
        call = GatewayCall(
            operation=OPERATION,
            endpoint=self._url,
            request=masked,
            http_status=status,
            response_body=mask_text(text[:MAX_RECORDED_BODY]) if text is not None else None,
            latency_ms=latency_ms,
            outcome=answer.outcome,
            error_code=answer.error.code if answer.error else None,
            ref=ref,
            started_at=started_at,
        )
        return answer, call
