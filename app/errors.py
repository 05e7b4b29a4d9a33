"""problem+json (RFC 9457) for every error a client can cause, with stable `type` slugs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.db import DATABASE_ERRORS, database_unavailable
from app.gateway.base import GatewayErrorInfo

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    code: str | None = None
    errors: list[FieldError] | None = None


class AppError(Exception):
    status = 400
    type = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.code = code
        self.errors = errors
        self.headers = headers
        self.extra = extra or {}
        # What a shopper's page may show, by language (never in the problem+json body).
        self.texts: dict[str, str] = {}


class Unauthorized(AppError):
    status, type, title = 401, "unauthorized", "Missing or invalid API key"


class Forbidden(AppError):
    status, type, title = 403, "forbidden", "This API key's role may not do this"


class NotFound(AppError):
    status, type, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, type, title = 409, "conflict", "Conflict"


class Gone(AppError):
    status, type, title = 410, "gone", "Gone"


class Unprocessable(AppError):
    status, type, title = 422, "validation-error", "The request is not valid"


class TooManyRequests(AppError):
    status, type, title = 429, "too-many-requests", "Too many attempts"


class PaymentDeclined(AppError):
    status, type, title = 402, "payment-declined", "The payment was declined"


class GatewayFailure(AppError):
    status, type, title = 502, "gateway-error", "The payment gateway refused the request"


class ServiceUnavailable(AppError):
    status, type, title = 503, "unavailable", "Temporarily unavailable, try again later"


class GatewayTimeout(AppError):
    status, type, title = 504, "gateway-timeout", "The payment gateway did not answer in time"


# The problem class of a gateway error, by the HTTP status its table prescribes.
_GATEWAY_PROBLEMS: dict[int, type[AppError]] = {
    402: PaymentDeclined,
    409: Conflict,
    422: Unprocessable,
    429: TooManyRequests,
    502: GatewayFailure,
    503: ServiceUnavailable,
    504: GatewayTimeout,
}


def problem_for(
    error: GatewayErrorInfo,
    detail: str | None = None,
    extra: dict[str, Any] | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    fallback: type[AppError] = GatewayFailure,
    statuses: Collection[int] | None = None,
) -> AppError:
    """The one gateway error -> problem+json mapping: the class its `http_status` names
    (`fallback` for a status without one, or outside `statuses` when given), our stable code
    as `code`, the raw code as `gateway_code` (first among the extra members), the English
    message as the detail unless one is given."""
    known = statuses is None or error.http_status in statuses
    kind = _GATEWAY_PROBLEMS.get(error.http_status, fallback) if known else fallback
    problem = kind(
        detail if detail is not None else error.message_en,
        code=error.stable_code,
        errors=errors,
        headers=headers,
        extra={"gateway_code": error.code, **(extra or {})},
    )
    problem.texts = {"ja": error.message_ja, "en": error.message_en}
    return problem


# A failed payment's problem is a decline unless its error names one of these.
_PAYMENT_FAILED = frozenset({402, 409, 422, 502, 503})


def failed_problem(error: GatewayErrorInfo | None, payment: dict[str, Any]) -> AppError:
    """The problem for a payment that failed (its JSON as `payment`): a decline when the
    gateway said nothing more."""
    if error is None:
        return PaymentDeclined(
            "The payment failed.", extra={"payment": payment, "gateway_code": None}
        )
    return problem_for(
        error, extra={"payment": payment}, fallback=PaymentDeclined, statuses=_PAYMENT_FAILED
    )


def problem_response(
    request: Request,
    *,
    status: int,
    type_: str,
    title: str,
    detail: str | None = None,
    code: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body = Problem(
        type=f"/problems/{type_}",
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        code=code,
        errors=errors,
    ).model_dump(exclude_none=True)
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


_SOURCES = ("body", "query", "path", "header", "cookie")
# pydantic's prefixes for errors raised in validators; the rest is our own readable message.
_MESSAGE_PREFIXES = ("Value error, ", "Assertion failed, ")


def _loc_to_field(loc: tuple[Any, ...] | list[Any]) -> str:
    """The field as the client sent it: `amount`, not `body.amount`; `status`, not `status.0`
    for a repeated query parameter's value."""
    parts = list(loc)
    source = parts.pop(0) if parts and parts[0] in _SOURCES else None
    if source in ("query", "header", "cookie") and len(parts) > 1 and isinstance(parts[-1], int):
        parts.pop()
    return ".".join(str(p) for p in parts) or "body"


def _message(error: Any) -> str:
    text = str(error.get("msg", "invalid"))
    for prefix in _MESSAGE_PREFIXES:
        text = text.removeprefix(prefix)
    return text


def problem_from_error(request: Request, exc: AppError) -> JSONResponse:
    return problem_response(
        request,
        status=exc.status,
        type_=exc.type,
        title=exc.title,
        detail=exc.detail,
        code=exc.code,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_from_error(request, exc)


def _field_error_of(error: Any) -> FieldError:
    if error.get("type") == "json_invalid":
        # Its location is the character offset, not a field: name the body instead.
        reason = (error.get("ctx") or {}).get("error", "")
        at = error.get("loc", ("body", "?"))[-1]
        detail = f" ({reason} at character {at})" if reason else ""
        return FieldError(field="body", message=f"The body is not valid JSON{detail}.")
    return FieldError(field=_loc_to_field(error.get("loc", ())), message=_message(error))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error_of(e) for e in exc.errors()]
    return problem_response(
        request,
        status=422,
        type_="validation-error",
        title="The request is not valid",
        detail="; ".join(f"{e.field}: {e.message}" for e in errors),
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    slug = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}.get(
        exc.status_code, "http-error"
    )
    return problem_response(
        request,
        status=exc.status_code,
        type_=slug,
        title=str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


INTERNAL_ERROR = "Something went wrong on our side; nothing was charged twice. Try again later."
DATABASE_DOWN = "The service cannot reach its database right now. Please try again in a moment."
DATABASE_DOWN_NOT_CHARGED = (
    "Payments are unavailable for a moment (our database cannot be reached); nothing was "
    "charged. Please try again shortly."
)


@contextlib.asynccontextmanager
async def database_guard(detail: str = DATABASE_DOWN) -> AsyncIterator[None]:
    """Turns "the database cannot be reached" inside the block into a 503 with `detail`."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, AppError) or not database_unavailable(exc):
            raise
        log.warning("database unavailable: %r", exc)
        raise ServiceUnavailable(
            detail, code="database_unavailable", headers={"Retry-After": "5"}
        ) from exc


# Renders the shopper's HTML error page (status, English message, problem code):
# app.web.html_error_page (app.main).
HtmlErrorPage = Callable[[Request, int, str, str | None], Response]


def _page_for(request: Request) -> HtmlErrorPage | None:
    """The HTML error page when `request` is a browser page (a checkout or card page, its form
    posts, the demo shop), not the JSON its script polls."""
    path = request.url.path
    is_page = path == "/" or (path.startswith("/checkout/") and not path.endswith("/status"))
    page: HtmlErrorPage | None = getattr(request.app.state, "html_error_page", None)
    return page if is_page else None


def _unavailable(request: Request, page: HtmlErrorPage | None, detail: str, code: str) -> Response:
    """A 503 the client may retry: the readable HTML page for a browser page, else a problem."""
    if page is not None:
        return page(request, 503, DATABASE_DOWN, code)
    return problem_response(
        request,
        status=503,
        type_=ServiceUnavailable.type,
        title=ServiceUnavailable.title,
        detail=detail,
        code=code,
        headers={"Retry-After": "5"},
    )


async def _unhandled(request: Request, exc: Exception) -> Response:
    page = _page_for(request)
    if database_unavailable(exc):
        log.warning("database unavailable on %s %s: %r", request.method, request.url.path, exc)
        return _unavailable(request, page, DATABASE_DOWN, "database_unavailable")
    schema_problem: str | None = getattr(request.app.state, "schema_problem", None)
    if schema_problem is not None:
        # Every query fails on a schema that is not migrated yet: say so, not "internal error".
        log.error("not ready (%s) on %s %s", schema_problem, request.method, request.url.path)
        detail = f"The service is not ready: {schema_problem}."
        return _unavailable(request, page, detail, "schema_not_at_head")
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if page is not None:
        return page(request, 500, INTERNAL_ERROR, None)
    return problem_response(
        request,
        status=500,
        type_="internal-error",
        title="Internal error",
        detail=INTERNAL_ERROR,
    )


def install_error_handlers(app: FastAPI, html_error_page: HtmlErrorPage | None = None) -> None:
    """`html_error_page`: what a browser page gets for an unexpected error or a database
    outage, instead of JSON."""
    app.state.html_error_page = html_error_page
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    # Driver and socket errors are answered where they arise, not re-raised to the server
    # (which would log a traceback and drop the client's keep-alive connection after the 503).
    for kind in DATABASE_ERRORS:
        app.add_exception_handler(kind, _unhandled)
    app.add_exception_handler(Exception, _unhandled)
