"""GET|POST /kickback and /kickback/{secret}: the gateway's result notifications. Always 200
with a non-empty body. Only the secret path (from an allowed peer) is trusted; /kickback (the
public contract) and a wrong secret are stored all the same and verified by the search."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from starlette.background import BackgroundTask

from app.carddata import redact_bytes, redact_text
from app.db import utcnow
from app.kickbacks import service, trust
from app.metrics import KICKBACKS_APPLIED, KICKBACKS_RECEIVED

router = APIRouter(tags=["kickbacks"])
log = logging.getLogger(__name__)


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > service.MAX_RAW:
            break
    return bytes(body[: service.MAX_RAW])


_SUMMARY = "Gateway result notification (kickback)"
_DESCRIPTION = (
    "Stored raw first, then applied. Always answers 200 `OK` (text/plain). Untrusted: each "
    "one is verified through the charges search before it changes a payment."
)
_SECRET_SUMMARY = "Gateway result notification on the secret path (trusted)"
_SECRET_DESCRIPTION = (
    "The URL registered as 決済結果通知URL: `/kickback/<KICKBACK_SECRET>`. Trusted when the "
    "secret is right and the peer is on KICKBACK_ALLOWED_IPS (if set); a wrong secret is "
    "treated like `/kickback`. Always answers 200 `OK` (text/plain)."
)


# Two routes per path on one handler (not api_route with both methods) so that each
# operation has its own id in the OpenAPI document.
@router.get(
    "/kickback",
    operation_id="kickback_get",
    response_class=PlainTextResponse,
    summary=_SUMMARY,
    description=_DESCRIPTION,
)
@router.post(
    "/kickback",
    operation_id="kickback_post",
    response_class=PlainTextResponse,
    summary=_SUMMARY,
    description=_DESCRIPTION,
)
async def kickback(request: Request) -> PlainTextResponse:
    return await _receive(request, None)


@router.get(
    "/kickback/{secret}",
    operation_id="kickback_secret_get",
    response_class=PlainTextResponse,
    summary=_SECRET_SUMMARY,
    description=_SECRET_DESCRIPTION,
)
@router.post(
    "/kickback/{secret}",
    operation_id="kickback_secret_post",
    response_class=PlainTextResponse,
    summary=_SECRET_SUMMARY,
    description=_SECRET_DESCRIPTION,
)
async def kickback_on_secret_path(request: Request, secret: str) -> PlainTextResponse:
    return await _receive(request, secret)


async def _receive(request: Request, secret: str | None) -> PlainTextResponse:
    state = request.app.state
    settings = state.settings
    peer = request.client.host if request.client else None
    trusted = trust.is_trusted(settings, secret, peer)
    # Before anything is read or stored: a flood of untrusted notices costs no database work.
    if not (trusted or trust.allowed_peer(settings, peer) or state.kickback_intake.allow(peer)):
        KICKBACKS_RECEIVED.labels("over_budget").inc()
        return PlainTextResponse("OK", status_code=200)
    try:
        # Raw bytes (Starlette's query_params would garble CP932 values), with card data
        # someone put there redacted before it reaches the database or the spool.
        raw_query = bytes(request.scope.get("query_string", b""))[: service.MAX_RAW]
        raw = service.RawKickback(
            method=request.method,
            source_ip=peer,
            raw_query=redact_bytes(raw_query),
            raw_body=redact_bytes(await _read_body(request)) if request.method == "POST" else b"",
            content_type=redact_text(request.headers.get("content-type") or "") or None,
            received_at=utcnow(),
            trusted=trusted,
        )
    except Exception:
        log.exception("kickback could not be read")
        return PlainTextResponse("OK", status_code=200)
    try:
        kickback_id = await service.store(state.sessions, raw)
    except Exception:
        # Database down: keep it on local disk (fsynced) and replay after recovery.
        log.exception("kickback inbox unavailable; spooling to disk")
        try:
            service.spool(settings.spool_dir, raw)
            KICKBACKS_RECEIVED.labels("spooled").inc()
        except Exception:
            KICKBACKS_RECEIVED.labels("lost").inc()
            log.critical("kickback could neither be stored nor spooled", exc_info=True)
        return PlainTextResponse("OK", status_code=200)
    KICKBACKS_RECEIVED.labels("stored").inc()
    # Stored and committed: answer now, apply right after the answer is sent. A crash in
    # between leaves the row 'received', which the replayer applies later.
    return PlainTextResponse(
        "OK", status_code=200, background=BackgroundTask(_apply, request, kickback_id)
    )


async def _apply(request: Request, kickback_id: int) -> None:
    state = request.app.state
    try:
        status = await service.apply(
            state.sessions,
            state.gateway,
            kickback_id,
            verifier=state.kickback_verifier,
            cards=state.kickback_cards,
        )
        KICKBACKS_APPLIED.labels(status).inc()
    except Exception:
        KICKBACKS_APPLIED.labels("error").inc()
        log.exception("kickback %s stored but not applied; it will be retried", kickback_id)
