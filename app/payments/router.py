"""Ops API: query payments and their trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.auth import OpsDep
from app.deps import SessionDep
from app.errors import NotFound, Problem, Unprocessable
from app.payments import service
from app.payments.models import Payment
from app.payments.schemas import PaymentDetail, PaymentOut, PaymentPage

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
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise NotFound(f"No payment {payment_id!r}.")
    events, calls = await service.payment_trail(session, payment_id)
    return PaymentDetail.build(payment, events, calls)
