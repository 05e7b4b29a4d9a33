"""Merchant API for billing robo (請求管理ロボ): register a tokenized card on a payer's payment
method, and card pages (`billing_card` checkout sessions) that do it for the payer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRouter

from app.auth import MerchantDep
from app.billing import service
from app.billing.models import BillingCardRegistration
from app.billing.schemas import (
    BillingCardCreate,
    BillingCardRegistrationOut,
    BillingCardSessionCreate,
    BillingCardSessionOut,
)
from app.deps import SessionDep, SessionFactoryDep, SettingsDep
from app.errors import Conflict, NotFound, Problem, ServiceUnavailable, problem_from_error
from app.gateway.base import BillingRobo
from app.idempotency import Bound, Idempotent, Resumed

router = APIRouter(prefix="/v1/billing", tags=["billing robo"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 402, 403, 404, 409, 422, 429, 502, 503)
}
IdPath = Annotated[str, Path(min_length=1, max_length=40)]


async def get_billing_robo(request: Request) -> BillingRobo:
    robo: BillingRobo | None = getattr(request.app.state, "billing_robo", None)
    if robo is None:
        raise ServiceUnavailable(
            "Billing robo is not configured (BILLING_ROBO_BASE_URL).",
            code="billing_robo_not_configured",
        )
    return robo


BillingRoboDep = Annotated[BillingRobo, Depends(get_billing_robo)]


def _page_url(request: Request, cs_id: str) -> str:
    settings = request.app.state.settings
    return f"{settings.public_base_url.rstrip('/')}/checkout/{cs_id}"


@router.post(
    "/payment-methods/credit-card",
    status_code=201,
    response_model=BillingCardRegistrationOut,
    responses={**_ERRORS, 202: {"model": BillingCardRegistrationOut}},
    summary="Register a tokenized card on a payer (credit_card_token)",
)
async def register_card(
    request: Request,
    body: BillingCardCreate,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    robo: BillingRoboDep,
    idempotent: Idempotent,
) -> Response:
    """`201` registered; `202` with status `unknown` when billing robo's answer was lost (it
    may have registered the card: look at the payer before trying again); a problem naming
    the field otherwise (3401-3407, a used or expired token, 3-D Secure). `Idempotency-Key`
    (optional): a retry with the same key replays the first answer instead of sending the
    single-use token again."""

    def answer(row: BillingCardRegistration) -> Response:
        out = BillingCardRegistrationOut.of(row).model_dump(mode="json")
        return JSONResponse(out, status_code=201 if row.status == "succeeded" else 202)

    async def handler() -> Response:
        registered = await service.register_from_api(sessions, robo, body, actor=principal.id)
        return answer(registered.row)

    async def resume(bound: Bound) -> Resumed:
        # The key's registration was sent (the token is spent): answer with its row, never
        # send the token again. A refusal's problem was stored when it was answered; a row
        # still 'processing' lost its answer with its process (look at the payer).
        async with sessions() as session:
            row = await service.find_registration(session, bound.id)
        assert row is not None
        if row.status == "failed":
            problem = Conflict(
                f"The first request with this key was refused ({row.error_code}).",
                code="billing_registration_failed",
                extra={"registration": BillingCardRegistrationOut.of(row).model_dump(mode="json")},
            )
            return Resumed(problem_from_error(request, problem))
        return Resumed(answer(row), final=row.status == "succeeded")

    return await idempotent.run(principal, handler, body=body, resume=resume)


@router.get(
    "/registrations/{registration_id}",
    response_model=BillingCardRegistrationOut,
    responses=_ERRORS,
    summary="A card registration and its outcome",
)
async def get_registration(
    registration_id: IdPath, _: MerchantDep, session: SessionDep
) -> BillingCardRegistrationOut:
    row = await service.find_registration(session, registration_id)
    if row is None:
        raise NotFound("No such billing card registration.")
    return BillingCardRegistrationOut.of(row)


@router.post(
    "/card-sessions",
    status_code=201,
    response_model=BillingCardSessionOut,
    responses=_ERRORS,
    summary="A card page for a payer (Idempotency-Key honoured)",
)
async def create_card_session(
    request: Request,
    body: BillingCardSessionCreate,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    settings: SettingsDep,
    robo: BillingRoboDep,
    idempotent: Idempotent,
) -> Response:
    """The payer opens `url`, enters a card, passes 3-D Secure (am=tx=sf=0 with the e-mail
    and phone given here, which must be the ones registered on the payer in billing robo),
    and the server registers the card with credit_card_token. Nothing is charged."""

    async def handler() -> Response:
        cs, target = await service.create_session(sessions, body, created_by=principal.id)
        out = BillingCardSessionOut.of(cs, target, _page_url(request, cs.id), None)
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    async def resume(bound: Bound) -> Resumed:
        # The key's page exists: answer with it, never make a second one.
        async with sessions() as session:
            cs, target, _ = await service.session_view(session, bound.id)
        out = BillingCardSessionOut.of(cs, target, _page_url(request, cs.id), None)
        return Resumed(JSONResponse(out.model_dump(mode="json"), status_code=201))

    return await idempotent.run(principal, handler, body=body, resume=resume)


@router.get(
    "/card-sessions/{session_id}",
    response_model=BillingCardSessionOut,
    responses=_ERRORS,
    summary="A card page and its last registration",
)
async def get_card_session(
    request: Request, session_id: IdPath, _: MerchantDep, session: SessionDep
) -> BillingCardSessionOut:
    cs, target, last = await service.session_view(session, session_id)
    return BillingCardSessionOut.of(cs, target, _page_url(request, cs.id), last)
