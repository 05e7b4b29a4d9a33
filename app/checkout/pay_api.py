"""The JSON pay call: the page script (or a shop's own page) pays a checkout session with a
token or a saved card. No API key: the unguessable, single-use session id is the capability."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app import velocity
from app.checkout import service
from app.checkout.api import PROBLEMS
from app.checkout.payment_page import three_ds_info
from app.checkout.schemas import PayRequest
from app.deps import GatewayDep, SessionFactoryDep, SettingsDep
from app.errors import (
    FieldError,
    Problem,
    Unprocessable,
    failed_problem,
    problem_from_error,
)
from app.payments.schemas import ShopperPaymentOut
from app.web import lang_of

router = APIRouter(tags=["checkout"])


@router.post(
    "/v1/checkout/sessions/{session_id}/pay",
    response_model=ShopperPaymentOut,
    responses={
        **PROBLEMS,
        402: {"model": Problem},
        502: {"model": Problem},
        503: {"model": Problem},
    },
    summary="Pay a checkout session with a token or a saved card",
    description="No API key: the unguessable, single-use session id is the capability.",
)
async def pay_session(
    request: Request,
    session_id: str,
    body: PayRequest,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> JSONResponse:
    if service.lacks_token_key(settings.gateway_provider, body.token, body.token_key):
        # Refused before any claim: nothing is charged and the session stays payable.
        raise Unprocessable(
            "token_key: required with a token when the gateway is SBPS",
            code="token_key_missing",
            errors=[
                FieldError(
                    field="token_key",
                    message="required with a token: the tokenKey com_sbps_system_token.js "
                    "returned with it",
                )
            ],
        )
    tds_info = (body.tds_info_token, body.tds_info_token_key)
    if service.lacks_three_ds(
        settings.gateway_provider, settings.sbps_three_ds, body.token, tds_info
    ):
        raise Unprocessable(
            "tds_info_token: required with a token when the gateway is SBPS (3-D Secure)",
            code="tds_info_token_missing",
            errors=[
                FieldError(
                    field="tds_info_token",
                    message="required with a token, with tds_info_token_key: what "
                    "com_sbps_system_tds2infotoken.js returned",
                )
            ],
        )
    result = await service.pay(
        sessions,
        gateway,
        session_id,
        token=body.token,
        token_key=body.token_key,
        card_num=body.card_num,
        result_mode=settings.gateway_result_mode,
        save_card=body.save_card,
        method=body.method,
        installments=body.installments,
        client_ip=request.client.host if request.client else None,
        limits=velocity.Limits.of(settings),
        pay_claim=settings.pay_claim,
        kickback_expected=settings.kickback_expected,
        tds=three_ds_info(settings, body, lang_of(request)),
    )
    out = ShopperPaymentOut.of(result.payment).model_dump(mode="json")
    status = service.page_status(result.payment)
    if status == "failed":
        info = result.result.error if result.result else None
        if result.payment.error_code and (info is None or info.code != result.payment.error_code):
            # Settled by other evidence (a kickback) before this answer: say what it showed.
            info = gateway.describe_error(result.payment.error_code)
        # The problem type follows what went wrong: a decline (402), a bad or reused token
        # (422), a gateway-side refusal (502), maintenance (503).
        return problem_from_error(request, failed_problem(info, out))
    return JSONResponse(out, status_code=200 if status == "succeeded" else 202)
