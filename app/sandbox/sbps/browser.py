"""What the shopper's browser talks to: the two token scripts and the endpoints behind them
(the real ones are internal to SBPS, so these are ours), same origin as the scripts.

  GET  sbpstoken/com_sbps_system_token.js          com_sbps_system.generateToken
  POST sbpstoken/token          merchantId serviceId ccNumber ccExpiration(YYYYMM) [securityCode]
       -> {"result":"OK","tokenResponse":{token,tokenKey,maskedCcNumber,ccExpiration,
           cardBrandCode}} | {"result":"NG","errorCode":"03003"}
  GET  sbpstoken/com_sbps_system_tds2infotoken.js  com_sbps_system_tds2.generateToken
  POST sbpstoken/tds2infotoken  merchantId serviceId email and/or a phone, [cardholderName,
       billing address, browser details] -> {"result":"OK","tokenResponse":{token,tokenKey}}

Error codes are seed 004's: type 03 required, 04 attribute, 05 length, 07 defined value, 99
system, then the item (001 merchant, 002 service, 003 number, 004 expiry, 005 security code;
ours for the 3-D Secure info token: 006 e-mail, 007 phone, 008 name; 999 none). Form-encoded
(a CORS "simple" request: no preflight) or JSON; always HTTP 200 JSON, `Access-Control-Allow-
Origin: *` (the checkout page is on the merchant's origin)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.sandbox.sbps import cards
from app.sandbox.sbps.api import state_of
from app.sandbox.sbps.models import Card, Token
from app.sandbox.sbps.state import SbpsState, new_token_key

log = logging.getLogger("app.sandbox.sbps")
router = APIRouter(tags=["SBPS browser"])

_STATIC = Path(__file__).with_name("static")
TOKEN_JS = "com_sbps_system_token.js"
TDS2_JS = "com_sbps_system_tds2infotoken.js"
SCRIPTS: dict[str, bytes] = {name: (_STATIC / name).read_bytes() for name in (TOKEN_JS, TDS2_JS)}
TOKEN_PATH = "/sbpstoken/token"
TDS2_PATH = "/sbpstoken/tds2infotoken"
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
    "Cache-Control": "no-store",
}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_PHONE = re.compile(r"[0-9-]+")
PHONES = ("mobilePhone", "homePhone", "workPhone")
# What the 3-D Secure info token may carry (3-D Secure 2.0 cardholder and browser data).
TDS2_DETAILS = (
    "cardholderName",
    "email",
    *PHONES,
    "billAddrCountry",
    "billAddrState",
    "billAddrPostCode",
    "billAddrCity",
    "billAddrLine1",
    "billAddrLine2",
    "billAddrLine3",
    "browserLanguage",
    "browserColorDepth",
    "browserScreenHeight",
    "browserScreenWidth",
    "browserTZ",
    "browserJavaEnabled",
)


class TokenError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Action = Callable[[SbpsState, dict[str, str]], dict[str, Any]]


def _digits(value: str, item: str, sizes: tuple[int, ...]) -> None:
    if not value:
        raise TokenError(f"03{item}")
    if not value.isdigit():
        raise TokenError(f"04{item}")
    if len(value) not in sizes:
        raise TokenError(f"05{item}")


def _merchant(sim: SbpsState, p: dict[str, str]) -> None:
    for name, item, size, expected in (
        ("merchantId", "001", 5, sim.config.merchant_id),
        ("serviceId", "002", 3, sim.config.service_id),
    ):
        _digits(p.get(name, ""), item, (size,))
        if p[name] != expected:
            raise TokenError(f"07{item}")


def card_token(sim: SbpsState, p: dict[str, str]) -> dict[str, Any]:
    """Checks in the seed's item order; a past expiry month is not a defined value (07004)."""
    _merchant(sim, p)
    number = p.get("ccNumber", "")
    _digits(number, "003", (14, 15, 16))
    if not cards.luhn_valid(number):
        raise TokenError("07003")
    expiration = p.get("ccExpiration", "")
    _digits(expiration, "004", (6,))
    now = sim.clock.now()
    year, month = int(expiration[:4]), int(expiration[4:])
    if not 1 <= month <= 12 or (year, month) < (now.year, now.month):
        raise TokenError("07004")
    code = p.get("securityCode", "")
    if code:
        _digits(code, "005", (3, 4))
    card = Card(number, expiration, code)
    token = Token(sim.new_token(), new_token_key(), now, card=card)
    sim.tokens[token.value] = token
    return {
        "token": token.value,
        "tokenKey": token.key,
        "maskedCcNumber": card.masked,
        "ccExpiration": expiration,
        "cardBrandCode": card.brand,
    }


def tds_info_token(sim: SbpsState, p: dict[str, str]) -> dict[str, Any]:
    """3-D Secure 2.0 asks for the shopper's e-mail or phone: one of them is required."""
    _merchant(sim, p)
    email = p.get("email", "")
    phones = [p[name] for name in PHONES if p.get(name)]
    if not email and not phones:
        raise TokenError("03006")
    if email and not _EMAIL.fullmatch(email):
        raise TokenError("04006")
    if len(email) > 254:
        raise TokenError("05006")
    for phone in phones:
        if not _PHONE.fullmatch(phone):
            raise TokenError("04007")
        if len(phone.replace("-", "")) > 15:
            raise TokenError("05007")
    if len(p.get("cardholderName", "")) > 45:
        raise TokenError("05008")
    details = {k: p[k] for k in TDS2_DETAILS if p.get(k)}
    token = Token(sim.new_token(), new_token_key(), sim.clock.now(), details=details)
    sim.tds_tokens[token.value] = token
    return {"token": token.value, "tokenKey": token.key}


async def _params(request: Request) -> dict[str, str]:
    raw = await request.body()
    if "json" in request.headers.get("content-type", "").lower():
        body = json.loads(raw.decode("utf-8") or "{}")
        if not isinstance(body, dict):
            raise ValueError("not an object")
        return {str(k): str(v).strip() for k, v in body.items() if v is not None}
    pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    return {k: v.strip() for k, v in reversed(pairs)}  # reversed: the first value wins


async def _run(request: Request, action: Action) -> Response:
    sim = state_of(request)
    try:
        params = await _params(request)
        async with sim.lock:
            body: dict[str, Any] = {"result": "OK", "tokenResponse": action(sim, params)}
    except TokenError as exc:
        body = {"result": "NG", "errorCode": exc.code}
    except ValueError:
        body = {"result": "NG", "errorCode": "99999"}  # an unreadable body
    except Exception:
        log.exception("SBPS token failure")
        body = {"result": "NG", "errorCode": "99999"}
    return JSONResponse(body, headers=_CORS)


@router.get(f"/sbpstoken/{TOKEN_JS}")
async def token_js(request: Request) -> Response:
    return state_of(request).scripts.serve(TOKEN_JS, SCRIPTS[TOKEN_JS])


@router.get(f"/sbpstoken/{TDS2_JS}")
async def tds2_js(request: Request) -> Response:
    return state_of(request).scripts.serve(TDS2_JS, SCRIPTS[TDS2_JS])


@router.post(TOKEN_PATH)
async def token(request: Request) -> Response:
    return await _run(request, card_token)


@router.post(TDS2_PATH)
async def tds2_info_token(request: Request) -> Response:
    return await _run(request, tds_info_token)


async def preflight() -> Response:
    return Response(status_code=204, headers=_CORS)


for _path in (TOKEN_PATH, TDS2_PATH):
    router.add_api_route(_path, preflight, methods=["OPTIONS"], include_in_schema=False)
