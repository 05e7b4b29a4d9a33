"""POST /v1/payments: a one-touch charge on a stored card (merchant; Idempotency-Key required)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.auth import MerchantDep
from app.customers import onetouch
from app.deps import GatewayDep, SessionFactoryDep, SettingsDep
from app.errors import (
    Problem,
    failed_problem,
    problem_from_error,
)
from app.gateway.base import GatewayErrorInfo, PaymentGateway
from app.idempotency import Bound, Idempotent, Resumed
from app.payments.models import Payment
from app.payments.refresh import RefreshDep
from app.payments.schemas import PaymentOut

router = APIRouter(prefix="/v1/payments", tags=["payments"])


@router.post(
    "",
    status_code=201,
    response_model=PaymentOut,
    responses={code: {"model": Problem} for code in (401, 402, 403, 409, 422, 502, 503)},
    summary="One-touch charge on a stored card (Idempotency-Key required)",
)
async def create_onetouch_payment(
    request: Request,
    body: onetouch.OnetouchCreate,
    principal: MerchantDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    idempotent: Idempotent,
    refresh: RefreshDep,
) -> Response:
    """`201` authorized/captured; `202` pending (rt=0) or unknown (settled by
    reconciliation, never retried); a decline or refusal is a problem carrying `payment`. A
    retry whose first answer was lost (a crash, a database outage) answers from the payment
    the key created, after one look at the charges search; it never charges again."""

    async def handler() -> Response:
        payment, result = await onetouch.charge(
            sessions,
            gateway,
            body,
            actor=principal.id,
            result_mode=settings.gateway_result_mode,
            kickback_expected=settings.kickback_expected,
        )
        return _answer(request, gateway, payment, result.error if result else None)

    async def resume(bound: Bound) -> Resumed | None:
        payment = await refresh(sessions, gateway, bound.id)
        if payment is None or (payment.status == "failed" and payment.unsent):
            return None  # it provably never left: this retry charges afresh
        unsettled = payment.status in ("pending", "unknown")
        return Resumed(_answer(request, gateway, payment, None), final=not unsettled)

    return await idempotent.run(principal, handler, body=body, resume=resume, required=True)


def _answer(
    request: Request, gateway: PaymentGateway, payment: Payment, error: GatewayErrorInfo | None
) -> Response:
    """The route's answer for `payment`; `error`: what the gateway said, if this request
    asked it (else the payment's stored error code says)."""
    out = PaymentOut.of(payment).model_dump(mode="json")
    if payment.status == "failed":
        described = gateway.describe_error(payment.error_code) if payment.error_code else None
        return problem_from_error(request, failed_problem(error or described, out))
    status = 201 if payment.status in ("authorized", "captured") else 202
    return JSONResponse(out, status_code=status)
