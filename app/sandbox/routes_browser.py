"""What the shopper's browser talks to: the two vendor scripts and the simulator's own JSON
endpoints behind them (the real gateway's internal calls are undocumented, so these are ours).

  POST gateway/token/create.aspx      aid, cn, ed (YYMM), fn, ln, cvv, md, pt
       -> {"result": "Success", "message": "", "tkn": "..."} | {"result": "ER055", "message": ...}
  POST gateway/3ds/authenticate.aspx  aid, tkn, am, tx, sf | iid, em, pn
       -> {"result": "Success", "message": "", "status": "frictionless"|"challenge"|"failed",
           "challenge": null | {"id", "code", "amount", "message"}}
  POST gateway/3ds/challenge.aspx     cid, action (complete|cancel), code
       -> {"result": "Success", "message": "", "status": "authenticated"|"failed"|"canceled"}

Form-encoded (what the scripts send: a CORS "simple" request, no preflight) or JSON bodies.
Answers are always HTTP 200 JSON with `Access-Control-Allow-Origin: *`: the checkout page runs
on the merchant's origin. No source-IP check here: shoppers' browsers call these."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.sandbox import cards, tokens
from app.sandbox.codes import GatewayError, message
from app.sandbox.endpoint import sim_of
from app.sandbox.state import SimState
from app.sandbox.wire import Params, read_pairs

log = logging.getLogger("app.sandbox")
router = APIRouter()

_STATIC = Path(__file__).with_name("static")
# Read once at import: the scripts are part of the package and never change at run time.
SCRIPTS: dict[str, bytes] = {
    name: (_STATIC / name).read_bytes() for name in ("CPToken.js", "EMV3DSAdapter.js")
}
_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
    "Cache-Control": "no-store",
}
TOKEN_PATH = "/gateway/token/create.aspx"
AUTH_PATH = "/gateway/3ds/authenticate.aspx"
CHALLENGE_PATH = "/gateway/3ds/challenge.aspx"

Action = Callable[[SimState, Params], dict[str, Any]]


def _script(sim: SimState, name: str) -> Response:
    return sim.scripts.serve(name, SCRIPTS[name])


@router.get("/gateway/js/CPToken.js")
async def cptoken_js(request: Request) -> Response:
    return _script(sim_of(request), "CPToken.js")


@router.get("/gateway/js/EMV3DSAdapter.js")
async def emv3ds_js(request: Request) -> Response:
    return _script(sim_of(request), "EMV3DSAdapter.js")


async def _pairs(request: Request) -> list[tuple[str, str]]:
    if "json" not in request.headers.get("content-type", "").lower():
        return await read_pairs(request)
    try:
        body = json.loads((await request.body()).decode("utf-8") or "{}")
    except ValueError:
        raise GatewayError("ER001") from None  # unreadable JSON body
    if not isinstance(body, dict):
        raise GatewayError("ER001")
    return [(str(k), str(v)) for k, v in body.items() if v is not None]


async def _run(request: Request, known: tuple[str, ...], action: Action) -> Response:
    sim = sim_of(request)
    try:
        p = Params(await _pairs(request), known)
        if sim.maintenance:
            raise GatewayError("ER999")
        async with sim.lock:
            body = action(sim, p)
        return JSONResponse({"result": "Success", "message": "", **body}, headers=_CORS)
    except GatewayError as exc:
        code = exc.code
    except Exception:
        log.exception("simulator failure on %s", request.url.path)
        code = "ER000"
    return JSONResponse({"result": code, "message": message(code)}, headers=_CORS)


def _create_token(sim: SimState, p: Params) -> dict[str, Any]:
    token = tokens.create(sim, p)
    return {"tkn": token.value}


def _authenticate(sim: SimState, p: Params) -> dict[str, Any]:
    binding = tokens.authenticate(sim, p)
    if binding.status == "challenge":
        if binding.am is not None:
            amount = binding.am + (binding.tx or 0) + (binding.sf or 0)
        else:
            product = sim.products[binding.iid]
            amount = product.am + product.tx + product.sf
        challenge = {
            "id": binding.challenge_id,
            "code": cards.CHALLENGE_CODE,
            "amount": amount,
            "message": (
                f"サンドボックス: ワンタイムパスワード「{cards.CHALLENGE_CODE}」を入力してください"
            ),
        }
        return {"status": "challenge", "challenge": challenge}
    status = "failed" if binding.status == "failed" else "frictionless"
    return {"status": status, "challenge": None}


def _challenge(sim: SimState, p: Params) -> dict[str, Any]:
    action = p.get("action") or "complete"
    if action not in ("complete", "cancel"):
        raise GatewayError("ER001")
    binding = tokens.finish_challenge(sim, p.get("cid"), action, p.get("code"))
    return {"status": binding.status}


@router.post(TOKEN_PATH)
async def token_create(request: Request) -> Response:
    return await _run(request, tokens.TOKEN_FIELDS, _create_token)


@router.post(AUTH_PATH)
async def three_ds_authenticate(request: Request) -> Response:
    return await _run(request, tokens.THREE_DS_FIELDS, _authenticate)


@router.post(CHALLENGE_PATH)
async def three_ds_challenge(request: Request) -> Response:
    return await _run(request, ("cid", "action", "code"), _challenge)


async def preflight() -> Response:
    return Response(status_code=204, headers=_CORS)


for _path in (TOKEN_PATH, AUTH_PATH, CHALLENGE_PATH):
    router.add_api_route(_path, preflight, methods=["OPTIONS"], include_in_schema=False)
