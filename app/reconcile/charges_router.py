"""`GET /v1/gateway/charges`: the gateway's charges search for ops (seed 003's filters, sort and
paging under neutral names), to compare our payments with the gateway's records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.auth import OpsDep
from app.deps import GatewayDep, SessionFactoryDep
from app.errors import FieldError, Problem, Unprocessable
from app.gateway.base import ChargeQuery, ChargeSort, ChargeStatus
from app.reconcile import charges

router = APIRouter(prefix="/v1/gateway", tags=["gateway"])

JobName = Literal["CHECK", "AUTH", "SALES", "CAPTURE", "CANCEL"]
# Seed 003's numbers are 数値 without a stated maximum; the bound of GET /v1/payments' gid.
GatewayId = Annotated[int | None, Query(ge=1, le=2**62)]
_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, tzinfo=UTC)


class CardOut(BaseModel):
    brand: str | None = Field(
        description="visa, mastercard, jcb, amex, diners, discover; null when not a card"
    )
    last4: str | None = Field(description="the card number's last 4 digits, as the gateway shows")


class ChargeErrorOut(BaseModel):
    code: str = Field(description="our stable code")
    gateway_code: str
    message: str


class GatewayChargeOut(BaseModel):
    charge_id: int = Field(description="the gateway's payment number (gid)")
    status: ChargeStatus
    job: str | None = Field(description="the job as the charge stands now (AUTH, SALES...)")
    amount: int | None
    tax: int | None
    shipping: int | None
    total: int | None
    order_id: str | None = Field(description="the order number sent with the charge (cod)")
    recurring_id: int | None = Field(description="its recurring billing's number (acid)")
    card: CardOut
    error: ChargeErrorOut | None = Field(description="why the charge failed, when it did")
    created_at: datetime | None = Field(description="when it was made (Japan time)")
    canceled_at: datetime | None
    next_charge_at: datetime | None = Field(description="its recurring billing's next charge")
    payment_id: str | None = Field(description="our payment holding this charge id, if any")
    payment_status: str | None = Field(description="that payment's status with us")

    @classmethod
    def of(cls, row: charges.ChargeRow) -> GatewayChargeOut:
        r = row.record
        error = (
            ChargeErrorOut(
                code=r.error.stable_code, gateway_code=r.error.code, message=r.error.message_en
            )
            if r.error is not None
            else None
        )
        return cls(
            charge_id=r.charge_id,
            status=r.status,
            job=r.job,
            amount=r.amount,
            tax=r.tax,
            shipping=r.shipping,
            total=r.total,
            order_id=r.order_ref,
            recurring_id=r.recurring_id,
            card=CardOut(brand=r.brand, last4=r.card_last4),
            error=error,
            created_at=r.created_at,
            canceled_at=r.canceled_at,
            next_charge_at=r.next_charge_at,
            payment_id=row.payment_id,
            payment_status=row.payment_status,
        )


class GatewayChargesPage(BaseModel):
    data: list[GatewayChargeOut]
    page: int
    per_page: int
    pages: int = Field(description="0 when nothing matched")
    total: int = Field(description="charges matching the filter, in all pages")
    sort: ChargeSort
    order: Literal["asc", "desc"]


def _aware(name: str, value: datetime | None, problems: list[FieldError]) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        problems.append(
            FieldError(
                field=name,
                message="Needs a timezone offset, e.g. 2026-12-01T00:00:00+09:00 (Japan time).",
            )
        )
    elif not _EARLIEST <= value <= _LATEST:
        problems.append(FieldError(field=name, message="Must be between 1970 and 9998."))
    return value


_DESCRIPTION = """One page of the gateway's own records of card charges (ROBOT PAYMENT's charges
search, seed 003), with the payment of ours that holds each charge id. Every request orders a
fresh search: pages are read from the gateway as it is now, not from a snapshot.

- `automatic`: `false` (default) is every charge the shop made, a recurring billing's first
  charge included; `true` only the charges the gateway made by itself for a recurring billing.
- `created_from`/`created_to` and `updated_from`/`updated_to`: inclusive, with a timezone
  offset; the gateway reads whole seconds in Japan time. When both ends of a range are given
  they may be at most 7 days apart; one end alone is an open range.
- `per_page` at most 1000 (the gateway's page size). A page past the last is a 422.
- 422 too when the gateway matches 54,000 charges or more: narrow the filter.
- 503 when the gateway is in maintenance or cannot be reached, 504 when it does not answer."""


@router.get(
    "/charges",
    response_model=GatewayChargesPage,
    responses={code: {"model": Problem} for code in (401, 403, 422, 502, 503, 504)},
    summary="Search the gateway's charges (ops)",
    description=_DESCRIPTION,
)
async def list_gateway_charges(
    _: OpsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    automatic: bool = False,
    charge_id: GatewayId = None,
    recurring_id: GatewayId = None,
    job: Annotated[list[JobName] | None, Query()] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    updated_from: datetime | None = None,
    updated_to: datetime | None = None,
    sort: ChargeSort = ChargeSort.CREATED_AT,
    order: Literal["asc", "desc"] = "desc",
    page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 1,
    per_page: Annotated[int, Query(ge=1, le=2**31 - 1)] = 100,
) -> GatewayChargesPage:
    problems: list[FieldError] = []
    query = ChargeQuery(
        automatic=automatic,
        charge_id=charge_id,
        recurring_id=recurring_id,
        jobs=tuple(dict.fromkeys(job or ())),
        created_from=_aware("created_from", created_from, problems),
        created_to=_aware("created_to", created_to, problems),
        updated_from=_aware("updated_from", updated_from, problems),
        updated_to=_aware("updated_to", updated_to, problems),
        sort=sort,
        descending=order == "desc",
        page=page,
        per_page=per_page,
    )
    if problems:
        raise Unprocessable("; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    found = await charges.search(sessions, gateway, query)
    return GatewayChargesPage(
        data=[GatewayChargeOut.of(r) for r in found.rows],
        page=found.page,
        per_page=found.per_page,
        pages=found.pages,
        total=found.total,
        sort=sort,
        order=order,
    )
