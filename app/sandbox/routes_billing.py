"""Billing robo (請求管理ロボ) `POST api/v1.0/billing_payment_method/credit_card_token` (seed 001):
register the card of a token on a payer's payment method, and `_sandbox/billing/payers` to set
up the payers it needs.

JSON in, JSON out: `{"error": null}` on success, else `{"error": {"code", "message"}}`. In the
order checked: 429 (code 20) beyond `billing_robo_rate_limit` requests per
`billing_robo_rate_window_seconds` from one source IP (requests sent while limited count too,
as documented); 503 code 19 in maintenance; 401 code 13 (source IP), 11 (user_id), 12
(access_key); then HTTP 400 with the API's own codes: 3401 billing_code missing, malformed or
unknown; 3404 number and code both given; 3402 number malformed or unknown (or neither given);
3403 code malformed or unknown; 3405 token missing or malformed; 3406 email / 3407 tel sent
but not equal to the payer's registered values. Then the card gateway answers with HTTP 200:
ER584 (token unknown or used), ER585 (expired), ER901 (3-D Secure not run with am=tx=sf=0 and
exactly the payer's registered e-mail and phone), ER900 (authentication failed), G codes of
the magic decline cards, G83 for an expired card.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from app.sandbox import cards, tokens
from app.sandbox.codes import GatewayError
from app.sandbox.codes import message as gateway_message
from app.sandbox.endpoint import sim_of
from app.sandbox.faults import GARBAGE_BODY
from app.sandbox.models import Payer, PaymentMethod
from app.sandbox.state import SimState

router = APIRouter(tags=["billing robo"])
control = APIRouter(prefix="/_sandbox/billing", tags=["sandbox control"])

PATH = "/api/v1.0/billing_payment_method/credit_card_token"

_MESSAGES: dict[int, str] = {
    1: "Internal server error.",
    11: "Invalid user_id.",
    12: "Invalid access_key.",
    13: "This IP address is not allowed.",
    19: "Under maintenance.",
    20: "Too many requests.",
    3401: "請求先コードが不正",
    3402: "決済情報番号が不正",
    3403: "決済情報コードが不正",
    3404: "請求先決済番号と請求先決済コードは同時に指定できない",
    3405: "トークン情報が不正",
    3406: "メールアドレスが不正",
    3407: "電話番号が不正",
}
_STATUS = {1: 500, 11: 401, 12: 401, 13: 401, 19: 503, 20: 429}
_CODE_RE = re.compile(r"[\x21-\x7e]{1,20}")  # 半角英数 + 記号
_TOKEN_RE = re.compile(r"[A-Za-z0-9+/=_-]{1,512}")
_EMAIL_RE = re.compile(r"[!-~]+@[!-~]+")


class BillingError(Exception):
    def __init__(self, code: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(code)
        self.code, self.headers = code, headers


def _error(code: int | str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    text = _MESSAGES.get(code, "") if isinstance(code, int) else gateway_message(code)
    return JSONResponse({"error": {"code": code, "message": text}}, status, headers=headers)


def _rate_limit(sim: SimState, ip: str) -> None:
    """Sliding window per source IP; every request counts, limited ones included."""
    config = sim.config
    now = sim.clock.now()
    window = timedelta(seconds=config.billing_robo_rate_window_seconds)
    hits = [t for t in sim.billing_hits.get(ip, []) if now - t < window]
    hits.append(now)
    sim.billing_hits[ip] = hits
    limit = config.billing_robo_rate_limit
    if len(hits) > limit:
        # The next request passes once all but limit-1 of these have left the window.
        free_at = hits[len(hits) - limit] + window if limit > 0 else now + window
        wait = max(1, math.ceil((free_at - now).total_seconds()))
        raise BillingError(20, {"Retry-After": str(wait)})


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return "\0"  # present but not text: fails every pattern below
    return str(value).strip()


def _method(payer: Payer, body: dict[str, Any]) -> PaymentMethod:
    number, code = (
        _text(body, "billing_payment_method_number"),
        _text(body, "billing_payment_method_code"),
    )
    if number and code:
        raise BillingError(3404)
    if code:
        found = payer.method_by_code(code) if _CODE_RE.fullmatch(code) else None
        if found is None:
            raise BillingError(3403)
        return found
    if not re.fullmatch(r"\d{1,18}", number) or int(number) not in payer.methods:
        raise BillingError(3402)
    return payer.methods[int(number)]


def _check_request(sim: SimState, body: dict[str, Any]) -> tuple[Payer, PaymentMethod, str]:
    config = sim.config
    if _text(body, "user_id") != config.billing_robo_user_id:
        raise BillingError(11)
    if _text(body, "access_key") != config.billing_robo_access_key:
        raise BillingError(12)
    billing_code = _text(body, "billing_code")
    payer = sim.payers.get(billing_code) if _CODE_RE.fullmatch(billing_code) else None
    if payer is None:
        raise BillingError(3401)
    method = _method(payer, body)
    token = _text(body, "token")
    if not _TOKEN_RE.fullmatch(token):
        raise BillingError(3405)
    email, tel = _text(body, "email"), _text(body, "tel")
    if email and (len(email) > 100 or not _EMAIL_RE.fullmatch(email) or email != payer.email):
        raise BillingError(3406)
    if tel and (not re.fullmatch(r"\d{1,15}", tel) or tel != payer.tel):
        raise BillingError(3407)
    return payer, method, token


async def _register(sim: SimState, payer: Payer, method: PaymentMethod, value: str) -> str:
    """The card gateway's part; returns the card number registered (for the magic speeds)."""
    async with sim.lock:
        token = tokens.usable(sim, value)
        token.used = True
    if sim.config.require_3ds:
        # Card registration: am=tx=sf=0 and exactly the payer's registered e-mail and phone.
        tokens.verify_3ds(token, am=0, tx=0, sf=0, iid="", em=payer.email, pn=payer.tel)
    magic = cards.lookup(token.card.number)
    if magic.decline:
        raise GatewayError(magic.decline)
    if token.card.expired(sim.clock.now()):
        raise GatewayError("G83")
    async with sim.lock:
        method.card = replace(token.card)
        method.registered_at = sim.clock.now()
        method.registrations += 1
    return token.card.number


@router.post(PATH)
async def credit_card_token(request: Request) -> Response:
    sim = sim_of(request)
    ip = request.client.host if request.client else ""
    try:
        async with sim.lock:
            _rate_limit(sim, ip)
        plan = sim.faults.roll()
        if plan.http_500:
            return Response("Internal Server Error", status_code=500, media_type="text/plain")
        if sim.maintenance:
            raise BillingError(19)
        allowed = sim.config.billing_robo_allowed_ips
        if allowed and ip not in allowed:
            raise BillingError(13)
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise BillingError(1)
        payer, method, token = _check_request(sim, body)
        number = await _register(sim, payer, method, token)
    except BillingError as exc:
        return _error(exc.code, _STATUS.get(exc.code, 400), exc.headers)
    except GatewayError as exc:
        # Gateway codes come inside a 200, as in the seed's own example.
        return _error(exc.code, 200)
    speed = cards.lookup(number).speed
    if speed == "slow":
        await asyncio.sleep(sim.config.slow_seconds)
    if speed == "timeout" or plan.timeout:
        await asyncio.sleep(sim.config.hang_seconds)  # registered; the answer is lost
    if plan.garbage:
        return Response(GARBAGE_BODY, status_code=200, media_type="application/json")
    return JSONResponse({"error": None})


# --- test control ---------------------------------------------------------------------------


class PaymentMethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1, le=10**18 - 1)
    code: str = Field(default="", max_length=20)


class PayerIn(BaseModel):
    """A payer as billing robo keeps it (bulk_upsert would create it in the real system)."""

    model_config = ConfigDict(extra="forbid")

    billing_code: str = Field(min_length=1, max_length=20, pattern=r"^[\x21-\x7e]+$")
    email: str = Field(default="", max_length=100)
    tel: str = Field(default="", pattern=r"^\d{0,15}$")
    payment_methods: list[PaymentMethodIn] = Field(
        default_factory=lambda: [PaymentMethodIn(number=1)]
    )


@control.get("/payers")
async def payers(request: Request) -> list[dict[str, Any]]:
    return [p.view() for p in sim_of(request).payers.values()]


@control.post("/payers")
async def put_payer(request: Request, body: PayerIn) -> dict[str, Any]:
    """Creates or replaces the payer `billing_code` (its registered cards are dropped)."""
    sim = sim_of(request)
    payer = Payer(
        billing_code=body.billing_code,
        email=body.email,
        tel=body.tel,
        methods={
            m.number: PaymentMethod(number=m.number, code=m.code) for m in body.payment_methods
        },
    )
    async with sim.lock:
        sim.payers[payer.billing_code] = payer
    return payer.view()


@control.get("/payers/{billing_code}")
async def get_payer(request: Request, billing_code: str) -> Response:
    payer = sim_of(request).payers.get(billing_code)
    if payer is None:
        return JSONResponse({"detail": "no such payer"}, status_code=404)
    return JSONResponse(payer.view())
