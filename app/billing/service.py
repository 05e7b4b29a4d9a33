"""Card registration on billing-robo payers: the merchant API call and the card page.

Each registration is a row written as 'processing' and committed before billing robo is
called (no transaction is open during the call), then updated under its row lock with what
came back. 'unknown' (a timeout or unreadable answer) is never shown as a success or a
failure: billing robo may have registered the card, and the payer's payment method there
says which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import velocity
from app.billing.models import BillingCardRegistration, BillingCardSession
from app.billing.schemas import (
    BillingCardCreate,
    BillingCardRegistrationOut,
    BillingCardSessionCreate,
)
from app.db import new_id
from app.errors import (
    FieldError,
    GatewayFailure,
    NotFound,
    PaymentDeclined,
    ServiceUnavailable,
    Unprocessable,
    problem_for,
)
from app.gateway import base
from app.gateway.base import (
    BillingCardResult,
    BillingRobo,
    ErrorKind,
    GatewayErrorInfo,
    Outcome,
)
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession, Kind
from app.idempotency import bind

log = logging.getLogger(__name__)

KIND = Kind.BILLING_CARD

# Our API's name for each field of the registration request a gateway error may name
# (problem+json `errors`).
_API_FIELDS: dict[str, str] = {
    "payment_method_number": "billing_payment_method_number",
    "payment_method_code": "billing_payment_method_code",
}
# The gateway statuses with their own problem class here (others: 502 gateway-error).
_BILLING_PROBLEMS = frozenset({409, 422})
# The token, or the 3-D Secure run on it.
_TOKEN_KINDS = frozenset({ErrorKind.TOKEN_INVALID, ErrorKind.THREE_DS_FAILED})


def _fields_of(info: GatewayErrorInfo) -> tuple[str, ...]:
    if info.kind in _TOKEN_KINDS:
        return ("token",)
    return tuple(_API_FIELDS.get(name, name) for name in info.fields)


@dataclass(frozen=True)
class Target:
    billing_code: str
    number: int | None
    code: str | None
    email: str | None
    tel: str | None


@dataclass(frozen=True)
class Registered:
    row: BillingCardRegistration
    result: BillingCardResult


def status_of(outcome: Outcome) -> str:
    if outcome == Outcome.SUCCESS:
        return "succeeded"
    return "unknown" if outcome == Outcome.UNKNOWN else "failed"


async def register(
    sessions: async_sessionmaker[AsyncSession],
    robo: BillingRobo,
    target: Target,
    token: str,
    *,
    actor: str,
    session_id: str | None = None,
) -> Registered:
    """One credit_card_token call, recorded before and after. Never raises for what billing
    robo answered: the caller maps the result (`raise_for`)."""
    async with sessions() as session:
        row = BillingCardRegistration(
            id=new_id("bcr"),
            session_id=session_id,
            billing_code=target.billing_code,
            payment_method_number=target.number,
            payment_method_code=target.code,
            email=target.email,
            tel=target.tel,
            status="processing",
            attempts=0,
            created_by=actor,
        )
        session.add(row)
        await bind(session, "billing_registration", row.id)
        await session.commit()
        row_id = row.id
    request = base.BillingCardRegistration(
        billing_code=target.billing_code,
        payment_method_number=target.number,
        payment_method_code=target.code,
        token=token,
        email=target.email,
        tel=target.tel,
    )
    result = await robo.register_credit_card(request, ref=row_id)
    async with sessions() as session:
        locked = await session.get(BillingCardRegistration, row_id, with_for_update=True)
        assert locked is not None
        locked.status = status_of(result.outcome)
        locked.error_code = result.error.code if result.error else None
        locked.attempts = result.attempts
        await session.commit()
    log.info(
        "billing card registration %s on %s: %s%s",
        row_id,
        target.billing_code,
        locked.status,
        f" ({locked.error_code})" if locked.error_code else "",
    )
    return Registered(locked, result)


def raise_for(registered: Registered) -> None:
    """Nothing for success or unknown; otherwise the problem to answer with, naming the
    field the code is about and carrying the registration."""
    result = registered.result
    if result.outcome in (Outcome.SUCCESS, Outcome.UNKNOWN):
        return
    info = result.error
    extra = {
        "gateway_code": info.code if info else None,
        "registration": BillingCardRegistrationOut.of(registered.row).model_dump(mode="json"),
    }
    message = info.message_en if info else "Billing robo refused the registration."
    code = info.stable_code if info else "billing_robo_error"
    fields = _fields_of(info) if info else ()
    errors = [FieldError(field=f, message=message) for f in fields] or None
    if info is not None and info.kind == ErrorKind.RATE_LIMITED:
        raise problem_for(info, message, extra, headers={"Retry-After": "60"})
    if result.outcome == Outcome.DECLINED:
        raise PaymentDeclined(message, code=code, errors=errors, extra=extra)
    if result.outcome == Outcome.UNAVAILABLE:
        raise ServiceUnavailable(message, code=code, extra=extra)
    if info is None:
        raise GatewayFailure(message, code=code, extra=extra)
    raise problem_for(info, message, extra, errors=errors, statuses=_BILLING_PROBLEMS)


async def register_from_api(
    sessions: async_sessionmaker[AsyncSession],
    robo: BillingRobo,
    data: BillingCardCreate,
    *,
    actor: str,
) -> Registered:
    problems = data.target_errors()
    if problems:
        raise Unprocessable("; ".join({p.message for p in problems}), errors=problems)
    target = Target(
        billing_code=data.billing_code,
        number=data.billing_payment_method_number,
        code=data.billing_payment_method_code,
        email=data.email,
        tel=data.tel,
    )
    registered = await register(sessions, robo, target, data.token, actor=actor)
    raise_for(registered)
    return registered


# --- card pages ----------------------------------------------------------------------------


async def find_registration(
    session: AsyncSession, registration_id: str
) -> BillingCardRegistration | None:
    return await session.get(BillingCardRegistration, registration_id)


async def create_session(
    sessions: async_sessionmaker[AsyncSession], data: BillingCardSessionCreate, *, created_by: str
) -> tuple[CheckoutSession, BillingCardSession]:
    problems = data.target_errors() + data.contact_errors()
    if problems:
        raise Unprocessable("; ".join(dict.fromkeys(p.message for p in problems)), errors=problems)
    async with sessions() as session:
        cs = await hosted.open_page(
            session,
            Kind.BILLING_CARD,
            expires_in_minutes=data.expires_in_minutes,
            email=data.email,
            phone=data.tel,
            success_url=data.success_url,
            cancel_url=data.cancel_url,
        )
        target = BillingCardSession(
            session_id=cs.id,
            billing_code=data.billing_code,
            payment_method_number=data.billing_payment_method_number,
            payment_method_code=data.billing_payment_method_code,
        )
        await session.flush()  # the session row first: the target references it
        session.add(target)
        await session.commit()
    log.info("billing card page %s for %s created by %s", cs.id, data.billing_code, created_by)
    return cs, target


async def session_view(
    session: AsyncSession, cs_id: str
) -> tuple[CheckoutSession, BillingCardSession, BillingCardRegistration | None]:
    cs = await session.get(CheckoutSession, cs_id)
    target = await session.get(BillingCardSession, cs_id) if cs is not None else None
    if cs is None or cs.kind != KIND or target is None:
        raise NotFound("This billing card page does not exist.")
    return cs, target, await last_registration(session, cs_id)


async def page_view(
    sessions: async_sessionmaker[AsyncSession], cs_id: str
) -> tuple[CheckoutSession | None, BillingCardSession | None]:
    """A billing card page and what it registers a card on (its own short transaction)."""
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
        return cs, await session.get(BillingCardSession, cs_id)


async def last_registration(session: AsyncSession, cs_id: str) -> BillingCardRegistration | None:
    stmt = (
        select(BillingCardRegistration)
        .where(BillingCardRegistration.session_id == cs_id)
        .order_by(BillingCardRegistration.created_at.desc(), BillingCardRegistration.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def register_from_page(
    sessions: async_sessionmaker[AsyncSession],
    robo: BillingRobo,
    cs_id: str,
    token: str,
    *,
    client_ip: str | None = None,
    limits: velocity.Limits | None = None,
) -> Registered:
    """The page's form post. The session row is the claim ('processing' while the call
    runs), so a double submit never makes two calls; it completes on success and opens
    again otherwise (a new token may be tried, up to the attempt limit). `client_ip` and
    `limits`: the card-testing limits, per page and per IP (a payer is not our customer)."""
    limits = limits or velocity.Limits()
    async with sessions() as session:
        cs = await hosted.lock_card_page(
            session,
            cs_id,
            KIND,
            per_session=limits.per_session,
            wrong_kind=NotFound("This billing card page does not exist."),
        )
        target_row = await session.get(BillingCardSession, cs_id)
        if target_row is None:
            raise NotFound("This billing card page does not exist.")
        reservation = await velocity.reserve(session, limits, customer=None, ip=client_ip)
        hosted.claim(cs)
        target = Target(
            billing_code=target_row.billing_code,
            number=target_row.payment_method_number,
            code=target_row.payment_method_code,
            email=cs.email,
            tel=cs.phone,
        )
        await session.commit()
    registered: Registered | None = None
    try:
        registered = await register(
            sessions, robo, target, token, actor=f"billing-page:{cs_id}", session_id=cs_id
        )
    finally:
        # A refusal counts; anything else (success, no answer) frees the reservation.
        await velocity.settle(sessions, reservation, registered.result if registered else None)
        # Completed on success; open again otherwise, also when the call raised.
        succeeded = registered is not None and registered.row.status == "succeeded"
        await hosted.release(sessions, cs_id, completed=succeeded)
    return registered
