"""`POST /api/xmlapi.do`, the API type's one endpoint. In order: HTTP Basic auth (401: the only
answer that is not HTTP 200), the body (Shift_JIS XML), the request id, faults (money-moving
ids: a 500 now; a timeout or garbage after the operation, an NG from it too), maintenance, the
values' characters, sps_hashcode (09), request_date (10), types, lengths and required elements,
the merchant and service ids, then the operation under the lock. Every other answer is HTTP 200
`text/xml;charset=Shift_JIS`, OK or NG; an unexpected exception is type 99 in an NG document,
never a traceback."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from app.sandbox.faults import NO_FAULTS, FaultPlan
from app.sandbox.sbps import codes, fields
from app.sandbox.sbps.calls import Answer, Call
from app.sandbox.sbps.operations import OPERATIONS
from app.sandbox.sbps.state import SbpsState
from app.sandbox.sbps.wire import MEDIA_TYPE, WireError, parse, render

log = logging.getLogger("app.sandbox.sbps")
router = APIRouter(tags=["SBPS API type"])

PATH = "/api/xmlapi.do"
RESPONSE_ROOT = "sps-api-response"
# A cut-off Java error page: neither XML nor Shift_JIS.
GARBAGE_BODY = b"<html><body><h1>HTTP Status 500 - </h1><pre>java.lang.NullPointer\xff\xfe\x00\x82"


def state_of(request: Request) -> SbpsState:
    sim: SbpsState = request.app.state.sbps
    return sim


def base_url(request: Request) -> str:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}/"


def _authorized(request: Request, sim: SbpsState) -> bool:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(encoded, validate=True).partition(b":")
    except binascii.Error:
        return False
    config = sim.config
    # Bytes, both compared: the time does not tell which half was wrong.
    user_ok = hmac.compare_digest(user, (config.merchant_id + config.service_id).encode())
    return user_ok & hmac.compare_digest(password, config.hash_key.encode())


def _xml(body: bytes, root_path: str = "") -> Response:
    session = secrets.token_hex(16).upper()
    headers = {
        "Cache-Control": "no-store",
        "Set-Cookie": f"JSESSIONID={session}; Path={root_path.rstrip('/')}/api; HttpOnly",
    }
    return Response(content=body, media_type=MEDIA_TYPE, headers=headers)


def ng(sim: SbpsState, code: str, root_path: str = "") -> Response:
    """NG: no id on the root (notes), the code and the date."""
    items = [("res_result", "NG"), ("res_err_code", code), ("res_date", sim.now_stamp())]
    return _xml(render(RESPONSE_ROOT, items), root_path)


def ok(sim: SbpsState, request_id: str, answer: Answer, root_path: str = "") -> Response:
    items = [
        ("res_result", "OK"),
        *answer.items,
        ("res_err_code", ""),
        ("res_date", sim.now_stamp()),
    ]
    return _xml(render(RESPONSE_ROOT, items, id_=request_id), root_path)


def _checked(sim: SbpsState, body: bytes) -> fields.Request:
    """The request once its envelope passes; the operation's own checks come after."""
    try:
        req = fields.read_request(parse(body))
    except WireError:
        raise codes.SbpsError(codes.code(codes.ATTRIBUTE, method=codes.NO_METHOD)) from None
    op = OPERATIONS.get(req.id)
    if op is None:
        raise codes.SbpsError(codes.code(codes.DEFINED, method=req.method))
    return req


@router.post(PATH)
async def xmlapi(request: Request) -> Response:
    sim = state_of(request)
    root = str(request.scope.get("root_path", ""))
    if not _authorized(request, sim):
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Basic realm="SPS"'}
        )
    plan: FaultPlan = NO_FAULTS
    try:
        req = _checked(sim, await request.body())
        op = OPERATIONS[req.id]
        plan = sim.faults.roll() if op.money else NO_FAULTS
        if plan.http_500:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if sim.maintenance:
            raise codes.SbpsError(sim.maintenance)
        fields.check_hash(req, sim.config.hash_key)
        fields.check_request_date(
            req,
            sim.clock.now(),
            default_limit=sim.config.default_limit_second,
            future_tolerance=sim.config.future_tolerance_seconds,
        )
        fields.validate(req, op.required)
        if req.get("merchant_id") != sim.config.merchant_id:
            raise codes.field_error(codes.DEFINED, "merchant_id")
        if req.get("service_id") != sim.config.service_id:
            raise codes.field_error(codes.DEFINED, "service_id")
        async with sim.lock:
            try:
                result: Answer | codes.SbpsError = op.handler(Call(sim, req, base_url(request)))
            except codes.SbpsError as exc:
                result = exc  # a decline is recorded too: the faults below still apply
    except codes.SbpsError as exc:
        return ng(sim, exc.code, root)
    except Exception:
        log.exception("SBPS simulator failure")
        return ng(sim, codes.code(codes.SYSTEM), root)
    if isinstance(result, Answer) and result.slow:
        await asyncio.sleep(sim.config.slow_seconds)
    if plan.timeout or (isinstance(result, Answer) and result.hang):
        await asyncio.sleep(sim.config.hang_seconds)  # recorded; the answer comes too late
    if plan.garbage:
        return Response(content=GARBAGE_BODY, media_type=MEDIA_TYPE)
    if isinstance(result, codes.SbpsError):
        return ng(sim, result.code, root)
    return ok(sim, req.id, result, root)
