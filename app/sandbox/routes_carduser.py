"""Stored users and cards: `gateway/carduser.aspx` (cmd 0 register, 1 update, 2 delete, 3 user
lookup, 5 card delete, 6 card lookup; cmd 4 there is ER654) and `gateway/carduser_token.aspx`
cmd=4 (register a card by token, or replace card `num`). Answers are `rst,ec,uid,key[,...]`."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.sandbox import accounts, tokens, validate
from app.sandbox.codes import GatewayError
from app.sandbox.endpoint import Call, gateway_endpoint, gateway_route
from app.sandbox.wire import Params, carduser_line, csv_response

router = APIRouter()

# `rt` is not in the seed's carduser tables, but clients send it out of habit: accept and
# ignore it rather than echo it back as free data.
CARDUSER_KNOWN = ("aid", "rt", "cmd", "uid", "key", "num", "em", "pn")
CARDUSER_TOKEN_KNOWN = ("aid", "rt", "cmd", "uid", "key", "num", "tkn", "cn")

# Fields after `rst,ec,uid,key` for each cmd.
_TAILS: dict[str, tuple[str, ...]] = {
    "3": ("em", "pn"),
    "5": ("num",),
    "6": ("num", "cn", "ed", "fn", "ln"),
}


def _carduser_error(p: Params, code: str) -> Response:
    tail = [p.get("num") if name == "num" else "" for name in _TAILS.get(p.get("cmd"), ())]
    return csv_response(carduser_line(["2", code, p.get("uid"), p.get("key"), *tail], p.free))


def _carduser_token_error(p: Params, code: str) -> Response:
    fields = ["2", code, p.get("uid"), p.get("key"), p.get("num")]
    return csv_response(carduser_line(fields, p.free))


async def _carduser(call: Call) -> Response:
    sim, p = call.sim, call.p
    em, pn = validate.email(p.get("em")), validate.phone(p.get("pn"))
    cmd = p.get("cmd")
    if cmd == "4":
        raise GatewayError("ER654")  # card registration goes through carduser_token.aspx
    validate.cmd(cmd, ("0", "1", "2", "3", "5", "6"))
    tail: list[str] = []
    async with sim.lock:
        if cmd == "0":
            user = accounts.create_user(sim, validate.uid(p.get("uid")), em, pn)
        else:
            # The user lookup (cmd 3) needs only uid in the seed; a key, if sent, must match.
            user = accounts.find_user(sim, p.get("uid"), p.get("key"), need_key=cmd != "3")
        if cmd == "1":
            user.em, user.pn = em or user.em, pn or user.pn
        elif cmd == "2":
            user.deleted = True
            user.cards.clear()
        elif cmd == "3":
            tail = [user.em, user.pn]
        elif cmd == "5":
            stored = accounts.find_card(user, p.get("num"))
            del user.cards[stored.num]
            tail = [str(stored.num)]
        elif cmd == "6":
            stored = accounts.find_card(user, p.get("num"))
            c = stored.card
            tail = [str(stored.num), c.masked, c.ed, c.fn, c.ln]
    return csv_response(carduser_line(["1", "", user.uid, user.key, *tail], p.free))


async def _carduser_token(call: Call) -> Response:
    sim, p = call.sim, call.p
    validate.cmd(p.get("cmd"), ("4",))
    user = accounts.find_user(sim, p.get("uid"), p.get("key"))
    num = accounts.find_card(user, p.get("num")).num if p.has("num") else None
    if p.has("cn"):
        raise GatewayError("ER586")
    async with sim.lock:
        token = tokens.usable(sim, p.get("tkn"))
        token.used = True
    if sim.config.require_3ds:
        # Card registration authenticates with am=tx=sf=0 (no payment to bind to).
        tokens.verify_3ds(token, am=0, tx=0, sf=0, iid="", em=None, pn=None)
    async with sim.lock:
        user = accounts.find_user(sim, user.uid, user.key)  # may have been deleted meanwhile
        card = replace(token.card)
        if num is None:
            num = user.add_card(card, sim.clock.now())
        else:
            accounts.find_card(user, str(num)).card = card
    fields = ["1", "", user.uid, user.key, str(num)]
    return csv_response(carduser_line(fields, p.free))


@gateway_route(router, "/gateway/carduser.aspx")
async def carduser(request: Request) -> Response:
    return await gateway_endpoint(
        request,
        known=CARDUSER_KNOWN,
        render_error=_carduser_error,
        handler=_carduser,
        money=False,
    )


@gateway_route(router, "/gateway/carduser_token.aspx")
async def carduser_token(request: Request) -> Response:
    return await gateway_endpoint(
        request,
        known=CARDUSER_TOKEN_KNOWN,
        render_error=_carduser_token_error,
        handler=_carduser_token,
        money=False,
    )
