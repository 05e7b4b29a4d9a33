"""The merchant's checkout API: create a checkout session, read it and its payment status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from app.auth import MerchantDep
from app.checkout import page_view, service
from app.checkout.schemas import CheckoutSessionCreate
from app.config import Settings
from app.deps import SessionFactoryDep, SettingsDep
from app.errors import NotFound, Problem
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession
from app.hosted.schemas import CheckoutSessionOut
from app.idempotency import Bound, Idempotent, Resumed

router = APIRouter(tags=["checkout"])

PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 409, 410, 422, 429)
}


def _session_out(
    settings: Settings, cs: CheckoutSession, payment_id: str | None, payment_status: str | None
) -> CheckoutSessionOut:
    url = f"{settings.public_base_url.rstrip('/')}/checkout/{cs.id}"
    return CheckoutSessionOut.of(cs, url, payment_id, payment_status)


@router.post(
    "/v1/checkout/sessions",
    status_code=201,
    response_model=CheckoutSessionOut,
    responses=PROBLEMS,
    summary="Create a checkout session (Idempotency-Key honoured)",
)
async def create_checkout_session(
    body: CheckoutSessionCreate,
    principal: MerchantDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    idempotent: Idempotent,
) -> Response:
    async def handler() -> Response:
        cs = await service.create_session(sessions, body, created_by=principal.id)
        out = _session_out(settings, cs, None, None)
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    async def resume(bound: Bound) -> Resumed:
        # The key's session exists: answer with it, never create a second one.
        cs = await hosted.find(sessions, bound.id)
        assert cs is not None
        out = _session_out(settings, cs, None, None)
        return Resumed(JSONResponse(out.model_dump(mode="json"), status_code=201))

    return await idempotent.run(principal, handler, body=body, resume=resume)


@router.get(
    "/v1/checkout/sessions/{session_id}",
    response_model=CheckoutSessionOut,
    responses=PROBLEMS,
    summary="A checkout session and its payment status",
)
async def get_checkout_session(
    session_id: str, _: MerchantDep, settings: SettingsDep, sessions: SessionFactoryDep
) -> CheckoutSessionOut:
    cs, p = await page_view.with_payment(sessions, session_id)
    if cs is None:
        raise NotFound("This checkout session does not exist.")
    return _session_out(settings, cs, p.id if p else None, p.status if p else None)
