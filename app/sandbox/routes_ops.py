"""Follow-up operations on a gid: `gateway/gateway.aspx` jb=SALES|CANCEL and
`gateway/re_auth.aspx`. Neither runs 3-D Secure (PDF-O p.4).

SALES / CANCEL (seed 002):
  * unknown or malformed tid -> ER053;
  * SALES on an AUTH -> captured (search jb SALES); SALES again, on a CAPTURE/CHECK/declined/
    canceled payment, or more than 90 days after the AUTH -> ER032;
  * CANCEL on an authorized or captured payment -> canceled (search jb CANCEL, vd set);
    CANCEL on a canceled or declined one -> ER033;
  * rt=0 answers `OK`/the code and, as seed 002 says, sends no kickback.

re_auth (cancel the old gid, authorize the corrected amounts as a new gid). Codes chosen from the
seed 000 p.26 / research 1.4 tables where the vendor documents none:
  * ER053  unknown or malformed tid;
  * ER066  the payment was product-registered (iid): "商品登録あり" cannot be re-authorized;
  * ER033  the payment is canceled or declined: its cancel step cannot run;
  * ER030  the payment is older than last month on the simulator clock, or a CHECK;
  * ER059/ER060 em (<= 254) / pn (<= 15 digits) as in seed 002; ER061..ER063 amounts (required;
    a zero total is ER061).
  The new authorization can itself be declined (magic decline cards, or an expired card): then a
  declined gid is recorded, rst=2 with the G code, and the old payment stays as it was. The new
  gid keeps the old kind: AUTH while uncaptured, CAPTURE once captured. rt=0 gets a kickback."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.sandbox import validate
from app.sandbox.charge import (
    ChargeSpec,
    PaymentAnswer,
    charge,
    hangs,
    lost_answer,
    txn_fields,
)
from app.sandbox.codes import GatewayError
from app.sandbox.endpoint import Call, gateway_endpoint, gateway_route
from app.sandbox.models import Transaction
from app.sandbox.routes_payment import payment_error
from app.sandbox.state import SimState

router = APIRouter()

GATEWAY_KNOWN = ("aid", "jb", "rt", "tid")
REAUTH_KNOWN = ("aid", "rt", "tid", "am", "tx", "sf", "em", "pn")
CAPTURE_LIMIT = timedelta(days=90)


def _answer(txn: Transaction, call: Call) -> PaymentAnswer:
    return PaymentAnswer(
        fields=txn_fields(txn),
        extra=[],
        free=call.p.free,
        with_credentials=txn.product is not None and txn.approved,
    )


async def _sales_cancel(call: Call) -> Response:
    sim, p = call.sim, call.p
    jb = validate.choice(p.get("jb"), ("SALES", "CANCEL"), "ER051")
    rt = validate.choice(p.get("rt"), ("0", "1"), "ER052")
    tid = validate.tid(p.get("tid"))
    async with sim.lock:
        txn = sim.ledger.get(tid)
        if txn is None:
            raise GatewayError("ER053")
        now = sim.clock.now()
        if jb == "SALES":
            if txn.jb != "AUTH" or txn.status != "authorized":
                raise GatewayError("ER032")
            if now - txn.created_at > CAPTURE_LIMIT:
                raise GatewayError("ER032")
            txn.jb, txn.status = "SALES", "captured"
        else:
            if txn.status not in ("authorized", "captured"):
                raise GatewayError("ER033")
            txn.jb, txn.status, txn.canceled_at = "CANCEL", "canceled", now
        txn.touch(now)
    response = _answer(txn, call).respond(sim, rt, notify=False)
    return await lost_answer(sim, call.plan, response, hang=False)


def _check_reauth(sim: SimState, old: Transaction) -> None:
    if old.product is not None:
        raise GatewayError("ER066")
    if old.status in ("canceled", "declined"):
        raise GatewayError("ER033")
    now, made = sim.clock.now(), old.created_at
    months = (now.year * 12 + now.month) - (made.year * 12 + made.month)
    if old.initial_jb == "CHECK" or months > 1:
        raise GatewayError("ER030")


async def _reauth(call: Call) -> Response:
    sim, p = call.sim, call.p
    rt = validate.choice(p.get("rt"), ("0", "1"), "ER052")
    tid = validate.tid(p.get("tid"))
    em, pn = validate.email(p.get("em"), 254), validate.phone(p.get("pn"), 15)
    am = validate.amount(p.get("am"), 8, "ER061")
    tx = validate.amount(p.get("tx"), 7, "ER062")
    sf = validate.amount(p.get("sf"), 7, "ER063")
    if am + tx + sf == 0:
        raise GatewayError("ER061")
    old = sim.ledger.get(tid)
    if old is None:
        raise GatewayError("ER053")
    _check_reauth(sim, old)

    def cancel_old(txn: Transaction) -> None:
        if txn.approved:
            old.jb, old.status, old.canceled_at = "CANCEL", "canceled", txn.created_at
            old.touch(txn.created_at)

    spec = ChargeSpec(
        jb="AUTH" if old.status == "authorized" else "CAPTURE",
        am=am,
        tx=tx,
        sf=sf,
        cod=old.cod,
        card=old.card,
        em=em or old.em,
        pn=pn or old.pn,
        uid=old.uid,
        num=old.num,
        reauth_of=old.gid,
    )
    # The guard re-checks under the lock: two concurrent re-auths of one gid cannot both win.
    txn = await charge(sim, spec, guard=lambda: _check_reauth(sim, old), after=cancel_old)
    response = _answer(txn, call).respond(sim, rt)
    return await lost_answer(sim, call.plan, response, hang=hangs(old.card))


@gateway_route(router, "/gateway/gateway.aspx")
async def gateway(request: Request) -> Response:
    return await gateway_endpoint(
        request,
        known=GATEWAY_KNOWN,
        render_error=payment_error,
        handler=_sales_cancel,
        money=True,
    )


@gateway_route(router, "/gateway/re_auth.aspx")
async def re_auth(request: Request) -> Response:
    return await gateway_endpoint(
        request, known=REAUTH_KNOWN, render_error=payment_error, handler=_reauth, money=True
    )
