"""The gateway's charges search for ops (`GET /v1/gateway/charges`): one page of what the
gateway holds, checked against the provider's limits first, each row beside the payment of
ours that holds its charge id, so ops can compare without the gateway's control panel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import AppError, FieldError, Unprocessable, problem_for
from app.gateway.base import (
    ChargeQuery,
    ChargeRecord,
    ChargeSearchLimits,
    ErrorKind,
    GatewayErrorInfo,
    PaymentGateway,
    SearchError,
)
from app.payments.models import Payment

# ChargeQuery's names as the API's query parameters spell them (the rest are the same).
_PARAMETERS = {"jobs": "job"}


def parameter(name: str) -> str:
    return _PARAMETERS.get(name, name)


@dataclass(frozen=True, slots=True)
class ChargeRow:
    record: ChargeRecord
    payment_id: str | None  # our payment holding this charge id, if one does
    payment_status: str | None


@dataclass(frozen=True, slots=True)
class ChargesPage:
    rows: list[ChargeRow]
    page: int
    per_page: int
    pages: int
    total: int


def _days(limits: ChargeSearchLimits) -> str:
    seconds = limits.max_range.total_seconds()
    return f"{seconds / 86400:g} days" if seconds % 86400 == 0 else f"{seconds:g} seconds"


def _range_problem(
    lo_name: str, hi_name: str, lo: datetime | None, hi: datetime | None, limits: ChargeSearchLimits
) -> FieldError | None:
    if lo is None or hi is None:
        return None  # one end alone is an open range: no limit (seed 003 p.8 ※1)
    if hi < lo:
        return FieldError(field=hi_name, message=f"{hi_name} is before {lo_name}.")
    if hi - lo > limits.max_range:
        return FieldError(
            field=hi_name,
            message=f"{lo_name} to {hi_name} spans more than {_days(limits)}: the gateway "
            f"searches at most {_days(limits)} at once when both ends are given. Search "
            "shorter ranges one after the other, or give one end only.",
        )
    return None


def query_problems(query: ChargeQuery, limits: ChargeSearchLimits) -> list[FieldError]:
    """What the provider would refuse in `query`, each naming its parameter (pure)."""
    problems = [
        p
        for p in (
            _range_problem(
                "created_from", "created_to", query.created_from, query.created_to, limits
            ),
            _range_problem(
                "updated_from", "updated_to", query.updated_from, query.updated_to, limits
            ),
        )
        if p is not None
    ]
    if query.per_page > limits.max_per_page:
        problems.append(
            FieldError(
                field="per_page",
                message=f"At most {limits.max_per_page} charges a page (the gateway's limit).",
            )
        )
    return problems


def _problem(error: GatewayErrorInfo, limits: ChargeSearchLimits) -> AppError:
    if error.kind is ErrorKind.TOO_MANY_RESULTS:
        return problem_for(
            error,
            f"The gateway's search matched {limits.max_results:,} charges or more, which it "
            "refuses to answer: narrow the filter (a shorter created or updated range, a job, "
            "a charge or recurring id).",
        )
    if error.kind is ErrorKind.INVALID and error.fields:
        names = [parameter(f) for f in error.fields]
        return problem_for(
            error,
            f"The gateway's charges search refused {', '.join(names)}.",
            errors=[FieldError(field=n, message="The gateway refused this value.") for n in names],
        )
    # Maintenance and an unreachable search are 503, a timeout 504, our key or request 502.
    return problem_for(error)


async def _payments_by_gid(session: AsyncSession, gids: Sequence[int]) -> dict[int, Payment]:
    if not gids:
        return {}
    rows = await session.scalars(select(Payment).where(Payment.gid.in_(gids)))
    return {p.gid: p for p in rows if p.gid is not None}


async def search(
    sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, query: ChargeQuery
) -> ChargesPage:
    """One page of the gateway's charges search. Raises Unprocessable (422 naming the
    parameter) for what the gateway would refuse, for a page past the last, for ER400 and
    for too many results; other search failures as their problem (503 maintenance or
    unreachable, 504 timeout, 502 misconfigured)."""
    limits = gateway.charge_search_limits
    problems = query_problems(query, limits)
    if problems:
        raise Unprocessable("; ".join(f"{p.field}: {p.message}" for p in problems), errors=problems)
    try:
        page = await gateway.search_charges_page(query)
    except SearchError as exc:
        raise _problem(exc.error, limits) from None
    if query.page > max(page.pages, 1):
        message = f"There are {page.pages} pages ({page.total} charges, {query.per_page} a page)."
        raise Unprocessable(f"page: {message}", errors=[FieldError(field="page", message=message)])
    async with sessions() as session:
        ours = await _payments_by_gid(session, [r.charge_id for r in page.rows])
    rows = [
        ChargeRow(
            record=r,
            payment_id=ours[r.charge_id].id if r.charge_id in ours else None,
            payment_status=ours[r.charge_id].status if r.charge_id in ours else None,
        )
        for r in page.rows
    ]
    return ChargesPage(
        rows=rows, page=query.page, per_page=query.per_page, pages=page.pages, total=page.total
    )
