"""Ops API: query payments and their trail; capture, cancel, re-authorize, resolve by hand."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.auth import OpsDep
from app.deps import GatewayDep, SessionDep, SessionFactoryDep
from app.errors import NotFound, Problem, Unprocessable, problem_from_error
from app.idempotency import Bound, Idempotent, Resumed
from app.payments import operations, service
from app.payments.models import Payment
from app.payments.refresh import RefreshDep
from app.payments.schemas import (
    PaymentDetail,
    PaymentOut,
    PaymentPage,
    ReauthorizeRequest,
    ResolveRequest,
)
from app.payments.states import Status

router = APIRouter(prefix="/v1/payments", tags=["payments"])

StatusName = Literal["pending", "authorized", "captured", "canceled", "failed", "unknown"]
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    422: {"model": Problem},
}


@router.get("", response_model=PaymentPage, responses=_ERRORS, summary="List payments")
async def list_payments(
    _: OpsDep,
    session: SessionDep,
    status: Annotated[list[StatusName] | None, Query()] = None,
    order_id: Annotated[str | None, Query(max_length=64)] = None,
    customer_id: Annotated[str | None, Query(max_length=50)] = None,
    gid: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    amount_min: Annotated[int | None, Query(ge=0, le=10**9)] = None,
    amount_max: Annotated[int | None, Query(ge=0, le=10**9)] = None,
    needs_attention: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PaymentPage:
    decoded = None
    if cursor:
        try:
            decoded = service.decode_cursor(cursor)
        except (ValueError, TypeError) as exc:
            raise Unprocessable("The cursor is not one this API returned.") from exc
    for value in (created_from, created_to):
        if value is not None and value.tzinfo is None:
            raise Unprocessable("Dates need a timezone, e.g. 2026-01-31T00:00:00+09:00.")
    rows, next_cursor = await service.list_payments(
        session,
        service.PaymentFilter(
            status=list(status) if status else None,
            order_id=order_id,
            customer_id=customer_id,
            gid=gid,
            created_from=created_from,
            created_to=created_to,
            amount_min=amount_min,
            amount_max=amount_max,
            needs_attention=needs_attention,
        ),
        limit=limit,
        cursor=decoded,
    )

    return PaymentPage(data=[PaymentOut.of(p) for p in rows], next_cursor=next_cursor)


@router.get(
    "/{payment_id}",
    response_model=PaymentDetail,
    responses={**_ERRORS, 404: {"model": Problem}},
    summary="A payment with its event and gateway-call trail",
)
async def get_payment(payment_id: str, _: OpsDep, session: SessionDep) -> PaymentDetail:
    payment = await service.find_payment(session, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id!r}.")
    events, calls = await service.payment_trail(session, payment_id)
    return PaymentDetail.build(payment, events, calls)


# --- operations ------------------------------------------------------------------------------

_OPERATION_ERRORS: dict[int | str, dict[str, object]] = {
    **_ERRORS,
    **{code: {"model": Problem} for code in (402, 404, 409, 502, 503, 504)},
}


def _payment_json(p: Payment, status_code: int = 200) -> JSONResponse:
    return JSONResponse(PaymentOut.of(p).model_dump(mode="json"), status_code=status_code)


@router.post(
    "/{payment_id}/capture",
    response_model=PaymentOut,
    responses=_OPERATION_ERRORS,
    summary="Capture an authorized payment (SALES)",
    description="409 with `payment_status` unless the payment is authorized. A timeout "
    "(504) leaves the status as it was until the charges search confirms what happened.",
)
async def capture_payment(
    payment_id: str,
    principal: OpsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    idempotent: Idempotent,
) -> Response:
    async def handler() -> Response:
        p = await operations.capture(sessions, gateway, payment_id, actor=principal.id)
        return _payment_json(p)

    return await idempotent.run(principal, handler)


@router.post(
    "/{payment_id}/cancel",
    response_model=PaymentOut,
    responses=_OPERATION_ERRORS,
    summary="Cancel an authorized or captured payment (CANCEL)",
)
async def cancel_payment(
    payment_id: str,
    principal: OpsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    idempotent: Idempotent,
) -> Response:
    async def handler() -> Response:
        p = await operations.cancel(sessions, gateway, payment_id, actor=principal.id)
        return _payment_json(p)

    return await idempotent.run(principal, handler)


@router.post(
    "/{payment_id}/reauthorize",
    status_code=201,
    response_model=PaymentOut,
    responses=_OPERATION_ERRORS,
    summary="Re-authorize with corrected amounts (re_auth): returns the new payment",
    description="The gateway cancels the old gid and authorizes the new amounts under a new "
    "gid: the answer is the new payment (kind `reauth`, `reauth_of` = this one), and this one "
    "becomes canceled. Only this or last month's payments (Japan time), never "
    "product-registered ones.",
)
async def reauthorize_payment(
    request: Request,
    payment_id: str,
    body: ReauthorizeRequest,
    principal: OpsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    idempotent: Idempotent,
    refresh: RefreshDep,
) -> Response:
    async def handler() -> Response:
        new = await operations.reauthorize(
            sessions,
            gateway,
            payment_id,
            operations.ReauthRequest(
                amount=body.amount,
                tax=body.tax,
                shipping=body.shipping,
                email=body.email,
                phone=body.phone,
            ),
            actor=principal.id,
        )
        return _payment_json(new, 201)

    async def resume(bound: Bound) -> Resumed | None:
        # The first request's answer was lost: its new payment answers (settled first from
        # the charges search if it is still open); re_auth.aspx is never called again.
        new = await refresh(sessions, gateway, bound.id)
        if new is None:
            return None  # refused before any charge: its row was removed; run afresh
        problem = operations.reauth_answer(new)
        if problem is None:
            return Resumed(_payment_json(new, 201))
        open_ = Status(new.status) in (Status.PENDING, Status.UNKNOWN)
        return Resumed(problem_from_error(request, problem), final=not open_)

    return await idempotent.run(principal, handler, body=body, resume=resume)


@router.post(
    "/{payment_id}/resolve",
    response_model=PaymentOut,
    responses=_OPERATION_ERRORS,
    summary="Settle a pending, unknown or flagged payment by hand, with a reason",
    description="For what reconciliation could not settle. Forward moves only; the reason and "
    "who acted are kept in the payment's trail. No gateway call is made.",
)
async def resolve_payment(
    payment_id: str,
    body: ResolveRequest,
    principal: OpsDep,
    sessions: SessionFactoryDep,
    idempotent: Idempotent,
) -> Response:
    async def handler() -> Response:
        p = await operations.resolve(
            sessions,
            payment_id,
            Status(body.status),
            reason=body.reason,
            gid=body.gid,
            actor=principal.id,
        )
        return _payment_json(p)

    return await idempotent.run(principal, handler, body=body)
