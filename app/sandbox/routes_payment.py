"""Payments: `gateway/gateway_token.aspx` (token, 3-D Secure checked, optional user + card
registration in the same call) and `gateway/onetouch.aspx` cmd=4 (stored card, no 3-D Secure).
Both answer `gid,rst,ap,ec,god,cod,am,tx,sf,ta,id,ps[,uid,key,num],free...` for rt=1, or
`OK`/the error code for rt=0 with the full result sent as a kickback."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from app.sandbox import accounts, tokens, validate
from app.sandbox.charge import (
    ChargeSpec,
    PaymentAnswer,
    charge,
    error_fields,
    hangs,
    lost_answer,
    txn_fields,
)
from app.sandbox.codes import GatewayError
from app.sandbox.endpoint import Call, ErrorRenderer, gateway_endpoint, gateway_route
from app.sandbox.models import CardData, Product, Token, Transaction, User
from app.sandbox.state import SimState
from app.sandbox.wire import Params, csv_response, payment_line

router = APIRouter()

TOKEN_KNOWN = (
    "aid",
    "jb",
    "rt",
    "tkn",
    "am",
    "tx",
    "sf",
    "iid",
    "cod",
    "em",
    "pn",
    "uid",
    "md",
    "pt",
    "cn",
)
ONETOUCH_KNOWN = (
    "aid",
    "rt",
    "cmd",
    "cod",
    "uid",
    "key",
    "num",
    "jb",
    "am",
    "tx",
    "sf",
    "iid",
    "em",
    "pn",
    "md",
    "pt",
)


@dataclass
class PaymentInput:
    jb: str
    rt: str
    cod: str
    em: str
    pn: str
    am: int
    tx: int
    sf: int
    product: Product | None


def read_payment(call: Call, jobs: tuple[str, ...], *, need_contact: bool) -> PaymentInput:
    """Common payment fields, checked in the order of their error codes (ER051..ER066)."""
    p = call.p
    iid = p.get("iid")
    # Product payments (商品登録あり) take no jb (seed 000 pp.13, 18 list none): the product's
    # registration sets the job, a sale here. A jb sent with iid is refused, not ignored.
    if iid and p.has("jb"):
        raise GatewayError("ER051")
    jb = "CAPTURE" if iid else validate.choice(p.get("jb"), jobs, "ER051")
    rt = validate.choice(p.get("rt"), ("0", "1"), "ER052")
    cod = validate.cod(p.get("cod"))
    em, pn = validate.email(p.get("em")), validate.phone(p.get("pn"))
    if need_contact and not em and not pn:
        raise GatewayError("ER059")  # em or pn is required (3-D Secure); no dedicated code
    am, tx, sf = (0, 0, 0) if iid else _amounts(p, jb)
    validate.md_pt(p.get("md"), p.get("pt"))
    product = _product(p, call.sim.products, iid) if iid else None
    if product is not None:
        am, tx, sf = product.am, product.tx, product.sf
    return PaymentInput(jb, rt, cod, em, pn, am, tx, sf, product)


def _amounts(p: Params, jb: str) -> tuple[int, int, int]:
    """am, tx, sf of a payment without a registered product."""
    # CHECK is a zero-yen validity check: amounts may be left out.
    am = validate.amount(p.get("am") or _zero(jb), 8, "ER061")
    tx = validate.amount(p.get("tx") or _zero(jb), 7, "ER062")
    sf = validate.amount(p.get("sf") or _zero(jb), 7, "ER063")
    if jb != "CHECK" and am + tx + sf == 0:
        raise GatewayError("ER061")
    return am, tx, sf


def _product(p: Params, products: dict[str, Product], iid: str) -> Product:
    """The registered product `iid` names (商品登録あり)."""
    # 半角英数(50) (seed 000 p.18; p.13 says 半角数字, read as the same field).
    if not re.fullmatch(r"[A-Za-z0-9]{1,50}", iid):
        raise GatewayError("ER066")
    if p.has("am") or p.has("tx") or p.has("sf"):
        raise GatewayError("ER066")  # either a registered product or amounts, not both
    product = products.get(iid)
    if product is None:
        raise GatewayError("ER005")
    return product


def _zero(jb: str) -> str:
    return "0" if jb == "CHECK" else ""


def _error_renderer(with_registration: bool) -> ErrorRenderer:
    def render(p: Params, code: str) -> Response:
        if p.get("rt") == "0":
            return PlainTextResponse(code)
        extra = [p.get("uid"), "", ""] if with_registration and p.has("uid") else []
        return csv_response(payment_line([*error_fields(code), *extra], p.free))

    return render


_token_error = _error_renderer(True)
payment_error = _error_renderer(False)


def _answer(txn: Transaction, call: Call, extra: list[tuple[str, str]]) -> PaymentAnswer:
    return PaymentAnswer(
        fields=txn_fields(txn),
        extra=extra,
        free=call.p.free,
        with_credentials=txn.product is not None and txn.approved,
    )


async def _token_payment(call: Call) -> Response:
    sim, p = call.sim, call.p
    pay = read_payment(call, ("AUTH", "CAPTURE", "CHECK"), need_contact=True)
    uid = validate.uid(p.get("uid")) if p.has("uid") else ""
    if p.has("cn"):
        raise GatewayError("ER586")
    token, reserved = await _spend_token(call, pay, uid)
    refused = _three_ds_refusal(call, pay, token, uid, reserved)
    if refused is not None:
        return refused
    registration = _Registration(sim, reserved, token.card)
    spec = ChargeSpec(
        jb=pay.jb,
        am=pay.am,
        tx=pay.tx,
        sf=pay.sf,
        cod=pay.cod,
        card=token.card,
        em=pay.em,
        pn=pay.pn,
        product=pay.product,
        free=tuple(p.free),
    )
    try:
        txn = await charge(sim, spec, after=registration)
    except BaseException:
        _release(call, reserved)
        raise
    response = _answer(txn, call, registration.fields).respond(sim, pay.rt)
    return await lost_answer(sim, call.plan, response, hang=hangs(token.card))


async def _spend_token(call: Call, pay: PaymentInput, uid: str) -> tuple[Token, User | None]:
    """The token, now used (single use from here on, whatever the outcome), and the user
    reserved for `uid` (pending until the charge is approved)."""
    sim = call.sim
    async with sim.lock:
        token = tokens.usable(sim, call.p.get("tkn"))
        if uid:
            accounts.ensure_new_uid(sim, uid)
        token.used = True
        reserved = accounts.create_user(sim, uid, pay.em, pay.pn, pending=True) if uid else None
    return token, reserved


def _three_ds_refusal(
    call: Call, pay: PaymentInput, token: Token, uid: str, reserved: User | None
) -> Response | None:
    """The answer to a refused 3-D Secure (None: it passed, or it is not required)."""
    if not call.sim.config.require_3ds:
        return None
    try:
        tokens.verify_3ds(
            token,
            am=None if pay.product else pay.am,
            tx=None if pay.product else pay.tx,
            sf=None if pay.product else pay.sf,
            iid=pay.product.iid if pay.product else "",
            em=pay.em,
            pn=pay.pn,
        )
    except GatewayError as exc:
        # A refused 3-D Secure is a processed payment: nothing charged, but a kickback is due.
        _release(call, reserved)
        answer = PaymentAnswer(
            fields=error_fields(exc.code),
            free=call.p.free,
            kickback_cod=pay.cod,
            extra=[("uid", uid), ("key", ""), ("num", "")] if uid else [],
        )
        return answer.respond(call.sim, pay.rt)
    return None


@dataclass
class _Registration:
    """Registers the token's card on the reserved user once the charge is approved (the
    charge's `after` hook, under the simulator's lock); `fields`: uid, key, num to answer."""

    sim: SimState
    reserved: User | None
    card: CardData
    fields: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, txn: Transaction) -> None:
        reserved = self.reserved
        if reserved is None:
            return
        if not txn.approved:
            self.sim.users.pop(reserved.uid, None)
            self.fields.extend([("uid", reserved.uid), ("key", ""), ("num", "")])
            return
        reserved.pending = False
        num = reserved.add_card(replace(self.card), txn.created_at)
        txn.uid, txn.num = reserved.uid, num
        self.fields.extend([("uid", reserved.uid), ("key", reserved.key), ("num", str(num))])


def _release(call: Call, reserved: User | None) -> None:
    if reserved is not None and reserved.pending:
        call.sim.users.pop(reserved.uid, None)


async def _onetouch(call: Call) -> Response:
    sim, p = call.sim, call.p
    pay = read_payment(call, ("AUTH", "CAPTURE"), need_contact=False)
    validate.cmd(p.get("cmd"), ("4",))
    user = accounts.find_user(sim, p.get("uid"), p.get("key"))
    # num: 半角数字(1) in the one-touch tables (seed 000 pp.12, 13): one digit.
    if not re.fullmatch(r"\d", p.get("num")):
        raise GatewayError("ER149")
    stored = accounts.find_card(user, p.get("num"))
    # Seed 000 p.12: em/pn given with a one-touch payment update the registered user.
    user.em = pay.em or user.em
    user.pn = pay.pn or user.pn
    spec = ChargeSpec(
        jb=pay.jb,
        am=pay.am,
        tx=pay.tx,
        sf=pay.sf,
        cod=pay.cod,
        # seed 000 p.12: md/pt of the one-touch request are this charge's payment method.
        card=replace(stored.card, md=p.get("md") or "10", pt=p.get("pt")),
        em=user.em,
        pn=user.pn,
        uid=user.uid,
        num=stored.num,
        product=pay.product,
        free=tuple(p.free),
    )
    txn = await charge(sim, spec)
    response = _answer(txn, call, []).respond(sim, pay.rt)
    return await lost_answer(sim, call.plan, response, hang=hangs(stored.card))


@gateway_route(router, "/gateway/gateway_token.aspx")
async def gateway_token(request: Request) -> Response:
    return await gateway_endpoint(
        request, known=TOKEN_KNOWN, render_error=_token_error, handler=_token_payment, money=True
    )


@gateway_route(router, "/gateway/onetouch.aspx")
async def onetouch(request: Request) -> Response:
    return await gateway_endpoint(
        request, known=ONETOUCH_KNOWN, render_error=payment_error, handler=_onetouch, money=True
    )
