"""From a gateway answer to an Outcome, and from there to the neutral result types."""

from __future__ import annotations

from typing import TypeVar

from app.gateway import codes as errors
from app.gateway.base import CardResult, ChargeResult, GatewayCall, Outcome, UserResult
from app.gateway.robotpayment.codec import (
    CarduserKind,
    CarduserResponse,
    CodecError,
    PaymentResponse,
    parse_bare_code,
    parse_carduser_response,
    parse_payment_response,
    parse_rt0_body,
)
from app.gateway.transport import Interpreter, Verdict, require_2xx

P = TypeVar("P")


def _rejected(code: str, parsed: P | None = None) -> Verdict[P]:
    return Verdict(errors.outcome_for(code), errors.lookup(code), parsed)


def payment_interpreter(result_mode: int, uid: str | None = None) -> Interpreter[PaymentResponse]:
    """rst=1 success; rst=2 declined or failed by its code; with rt=0, `OK` is pending.
    A bare code (`ER003`, `ER:ER003`) is a rejection in either mode. `uid`: the customer a
    pay with registration sent (its answer is read by where that uid stands)."""

    def interpret(status: int, text: str) -> Verdict[PaymentResponse]:
        require_2xx(status)
        if result_mode == 0:
            try:
                if parse_rt0_body(text).accepted:
                    return Verdict(Outcome.PENDING)
            except CodecError:
                pass  # a full answer line: read it below like rt=1
        code = parse_bare_code(text)
        if code is not None:
            return _rejected(code)
        response = parse_payment_response(text, uid)
        if response.rst == 1:
            return Verdict(Outcome.SUCCESS, None, response)
        return _rejected(response.ec or "", response)

    return interpret


def carduser_interpreter(kind: CarduserKind) -> Interpreter[CarduserResponse]:
    def interpret(status: int, text: str) -> Verdict[CarduserResponse]:
        require_2xx(status)
        code = parse_bare_code(text)
        if code is not None:
            return _rejected(code)
        response = parse_carduser_response(kind, text)
        if response.rst == 1:
            return Verdict(Outcome.SUCCESS, None, response)
        return _rejected(response.ec or "", response)

    return interpret


def charge_result(
    verdict: Verdict[PaymentResponse], call: GatewayCall, *, registration: bool
) -> ChargeResult:
    """`registration`: the call asked to register user + card, so uid/key/num are real
    (otherwise those positions hold whatever the layout variant put there)."""
    r = verdict.parsed
    if r is None:
        return ChargeResult(outcome=verdict.outcome, error=verdict.error, call=call)
    return ChargeResult(
        outcome=verdict.outcome,
        charge_id=r.gid or None,  # failures carry gid 0: no payment was created
        gateway_order_code=r.god,
        approval_code=r.ap,
        order_ref=r.cod,
        amount=r.am,
        tax=r.tx,
        shipping=r.sf,
        total=r.ta,
        issued_id=r.id,
        issued_password=r.ps,
        customer_id=r.uid if registration else None,
        customer_key=r.key if registration else None,
        card_seq=r.num if registration else None,
        extra=r.extras,
        error=verdict.error,
        call=call,
    )


def user_result(verdict: Verdict[CarduserResponse], call: GatewayCall) -> UserResult:
    r = verdict.parsed
    if r is None:
        return UserResult(outcome=verdict.outcome, error=verdict.error, call=call)
    return UserResult(
        outcome=verdict.outcome,
        customer_id=r.uid,
        customer_key=r.key,
        email=r.em,
        phone=r.pn,
        error=verdict.error,
        call=call,
    )


def card_result(verdict: Verdict[CarduserResponse], call: GatewayCall) -> CardResult:
    r = verdict.parsed
    if r is None:
        return CardResult(outcome=verdict.outcome, error=verdict.error, call=call)
    return CardResult(
        outcome=verdict.outcome,
        customer_id=r.uid,
        customer_key=r.key,
        card_seq=r.num,
        masked_number=r.cn,
        expiry=r.ed,
        first_name=r.fn,
        last_name=r.ln,
        error=verdict.error,
        call=call,
    )
