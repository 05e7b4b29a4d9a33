"""POST /v1/payments: a one-touch charge on a stored card (merchant; Idempotency-Key required)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.auth import MerchantDep
from app.deps import GatewayDep, SessionFactoryDep, SettingsDep
from app.errors import (
    AppError,
    Conflict,
    GatewayFailure,
    PaymentDeclined,
    Problem,
    ServiceUnavailable,
    Unprocessable,
    problem_from_error,
)
from app.idempotency import OptionalKeyHeader, run_idempotent
from app.payments import onetouch
from app.payments.schemas import PaymentOut

router = APIRouter(prefix="/v1/payments", tags=["payments"])

_PROBLEM_BY_STATUS: dict[int, type[AppError]] = {
    402: PaymentDeclined,
    409: Conflict,
    422: Unprocessable,
    502: GatewayFailure,
    503: ServiceUnavailable,
}


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
    idempotency_key: OptionalKeyHeader = None,
) -> Response:
    """`201` authorized/captured; `202` pending (rt=0) or unknown (settled by
    reconciliation, never retried); a decline or refusal is a problem carrying `payment`."""

    async def handler() -> Response:
        payment, result = await onetouch.charge(
            sessions,
            gateway,
            body,
            actor=principal.id,
            result_mode=settings.gateway_result_mode,
        )
        out = PaymentOut.of(payment).model_dump(mode="json")
        if payment.status == "failed":
            info = result.error if result else None
            kind = _PROBLEM_BY_STATUS.get(info.http_status if info else 402, PaymentDeclined)
            return problem_from_error(
                request,
                kind(
                    info.message_en if info else "The payment failed.",
                    code=info.stable_code if info else None,
                    extra={"payment": out, "gateway_code": info.code if info else None},
                ),
            )
        status = 201 if payment.status in ("authorized", "captured") else 202
        return JSONResponse(out, status_code=status)

    return await run_idempotent(
        request,
        sessions,
        principal=principal.id,
        key=idempotency_key,
        payload=body.model_dump_json().encode(),
        handler=handler,
        required=True,
    )
