"""`POST /csp-reports`: the collector of the payment pages' CSP violation reports.

Anyone's browser may post here, so it is cheap and hostile-input safe, in this order: the
client's budget (per client address as the service derives it, README "What the service trusts
for the client address", and in all; 429 with Retry-After, before the body is read), the body
size (16 KiB; 413), the content type (415), the shape (400 problem+json naming the field),
then count and store (204). Never a 5xx: a database that is down loses the report (counted)."""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import APIRouter, Request, Response

from app.db import DATABASE_ERRORS
from app.deps import SessionFactoryDep, SettingsDep
from app.errors import TooManyRequests
from app.pagesec import reports
from app.pagesec.csp import REPORT_PATH
from app.ratelimit import IntakeBudget

log = logging.getLogger(__name__)
router = APIRouter(tags=["payment-page integrity"])

_LEGACY_SCHEMA = {
    "type": "object",
    "required": ["csp-report"],
    "properties": {
        "csp-report": {
            "type": "object",
            "required": ["document-uri"],
            "properties": {
                "document-uri": {"type": "string"},
                "blocked-uri": {"type": "string"},
                "effective-directive": {"type": "string", "maxLength": 200},
                "violated-directive": {"type": "string"},
            },
        }
    },
}
_REPORTS_SCHEMA = {
    "type": "array",
    "minItems": 1,
    "maxItems": reports.MAX_REPORTS_PER_BATCH,
    "items": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"type": "string", "maxLength": 100, "example": "csp-violation"},
            "url": {"type": "string"},
            "body": {
                "type": "object",
                "required": ["documentURL", "effectiveDirective"],
                "properties": {
                    "documentURL": {"type": "string"},
                    "blockedURL": {"type": "string"},
                    "effectiveDirective": {"type": "string", "maxLength": 200},
                },
            },
        },
    },
}
_PROBLEM = {"content": {"application/problem+json": {"schema": {"type": "object"}}}}
_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            reports.CSP_REPORT: {"schema": _LEGACY_SCHEMA},
            reports.REPORTS_JSON: {"schema": _REPORTS_SCHEMA},
        },
    }
}


def budget_of(request: Request) -> IntakeBudget:
    """This process's budget for reports (app.main makes it from the settings)."""
    budget: IntakeBudget = request.app.state.csp_report_budget
    return budget


async def _body(request: Request) -> bytes:
    """The body, read up to MAX_BODY_BYTES (ReportTooLarge beyond, without reading on)."""
    limit = reports.MAX_BODY_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise reports.ReportTooLarge(f"A CSP report body is at most {limit} bytes.")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise reports.ReportTooLarge(f"A CSP report body is at most {limit} bytes.")
    return bytes(body)


@router.post(
    REPORT_PATH,
    status_code=204,
    summary="CSP violation reports from the payment pages (report-uri and report-to)",
    response_class=Response,
    openapi_extra=_OPENAPI,
    responses={
        204: {"description": "Taken (counted, stored deduplicated)"},
        400: {"description": "Not a CSP violation report", **_PROBLEM},
        413: {"description": "Body over 16 KiB", **_PROBLEM},
        415: {"description": "Not application/csp-report nor application/reports+json", **_PROBLEM},
        # The service's NUL guard answers before this route (app/input_guard.py).
        422: {"description": "A NUL character in the body", **_PROBLEM},
        429: {"description": "Too many reports from this client; see Retry-After", **_PROBLEM},
    },
)
async def csp_reports(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    client = request.client.host if request.client else None
    if not budget_of(request).allow(client):
        rate = settings.csp_reports_per_client_per_minute or settings.csp_reports_per_minute
        wait = max(1, math.ceil(60 / max(rate, 1)))
        raise TooManyRequests(
            "Too many CSP reports from this client.", headers={"Retry-After": str(wait)}
        )
    body = await _body(request)
    found = reports.parse(request.headers.get("content-type", ""), body)
    try:
        await reports.record(sessions, found)
    except DATABASE_ERRORS:
        # A report is not worth a 5xx (the browser would not retry it anyway): counted, lost.
        log.warning("CSP report not stored: database unavailable", exc_info=True)
    return Response(status_code=204)
