"""Checkout use cases: create a session, pay it exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import velocity
from app.checkout.schemas import CheckoutSessionCreate
from app.crash import crash_point
from app.customers import service as customers
from app.customers.models import Card, Customer
from app.db import new_id, utcnow
from app.errors import (
    DATABASE_DOWN_NOT_CHARGED,
    Conflict,
    FieldError,
    NotFound,
    TooManyRequests,
    Unprocessable,
    database_guard,
)
from app.events import outbox
from app.gateway.base import (
    AuthenticatedCharge,
    ChargeResult,
    ErrorKind,
    OnetouchCharge,
    Outcome,
    PaymentGateway,
    ThreeDSStart,
    TokenCharge,
    payment_ref,
)
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession, Kind
from app.hosted.service import ensure_payable
from app.metrics import VELOCITY_REJECTIONS
from app.payments import calls, three_ds
from app.payments import service as payments
from app.payments.models import Payment
from app.payments.rows import KICKBACK_EXPECTED
from app.payments.states import Status

log = logging.getLogger(__name__)


async def create_session(
    sessions: async_sessionmaker[AsyncSession], data: CheckoutSessionCreate, *, created_by: str
) -> CheckoutSession:
    async with sessions() as session:
        cs = await _open_payment_page(session, data)
        await session.commit()
    log.info("checkout session %s created by %s: total %d yen", cs.id, created_by, cs.total)
    return cs


async def _open_payment_page(session: AsyncSession, data: CheckoutSessionCreate) -> CheckoutSession:
    return await hosted.open_page(
        session,
        Kind.PAYMENT,
        expires_in_minutes=data.expires_in_minutes,
        email=data.email,
        phone=data.phone,
        success_url=data.success_url,
        cancel_url=data.cancel_url,
        customer_uid=data.customer_id,
        payment=hosted.PaymentTerms(
            job=data.job,
            amount=data.amount,
            tax=data.tax,
            shipping=data.shipping,
            item_code=data.item_code,
            order_id=data.order_id,
            save_card=data.save_card,
            offer_save_card=data.offer_save_card and not data.save_card,
            payment_methods=tuple(data.payment_methods),
            installment_counts=tuple(sorted(set(data.installment_counts or ()))),
            metadata=data.metadata,
        ),
    )


async def live_payment(session: AsyncSession, cs_id: str) -> Payment | None:
    """The session's payment that is not 'failed' (at most one: a database constraint)."""
    stmt = select(Payment).where(
        Payment.checkout_session_id == cs_id, Payment.status != Status.FAILED
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def last_payment(session: AsyncSession, cs_id: str) -> Payment | None:
    stmt = (
        select(Payment)
        .where(Payment.checkout_session_id == cs_id)
        .order_by(Payment.created_at.desc(), Payment.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_open_session(session: AsyncSession, cs_id: str) -> CheckoutSession:
    return ensure_payable(await session.get(CheckoutSession, cs_id))


@dataclass(frozen=True)
class PayResult:
    payment: Payment
    session: CheckoutSession
    result: ChargeResult | None


@dataclass(frozen=True)
class ThreeDSInfo:
    """A token pay's redirect 3-D Secure (SBPS): the browser's info token and its key
    (com_sbps_system_tds2infotoken.js), and our public base URL for the return."""

    token: str
    token_key: str
    return_base: str
    lang: str = "ja"  # the page's language, kept across the issuer's page

    def start(self, cs_id: str, payment_id: str) -> ThreeDSStart:
        # One return URL per payment (the payment id in the path names the attempt); the
        # ok/ng split is SBPS's and only a hint to us.
        url = return_path(cs_id, payment_id)
        base = self.return_base.rstrip("/")
        return ThreeDSStart(
            info_token=self.token,
            info_token_key=self.token_key,
            ok_url=f"{base}{url}?result=ok&lang={self.lang}",
            ng_url=f"{base}{url}?result=ng&lang={self.lang}",
        )


def return_path(cs_id: str, payment_id: str) -> str:
    """Where the shopper's browser comes back from 3-D Secure (app/checkout/pages.py)."""
    return f"/checkout/{cs_id}/payments/{payment_id}/3ds"


@dataclass
class _Claim:
    """A pay's claim on its session, committed: the pending payment it will charge. Not
    frozen: the answer's transaction leaves the session row it read in `recorded_session`."""

    cs: CheckoutSession
    payment_id: str
    reservation: velocity.Reservation
    customer: Customer | None  # the card's owner when a saved or a first-registered card pays
    register_first: bool  # register the new card on the customer, then charge it one-touch
    charge_uid: str | None  # register user + card in the payment call itself
    method: str | None = None  # md the shopper chose (None: lump sum), for one-touch charges
    installments: int | None = None  # pt with md=61
    recorded_session: CheckoutSession | None = None
    three_ds: ThreeDSInfo | None = None


def lacks_token_key(provider: str, token: str | None, token_key: str | None) -> bool:
    """SBPS charges a token only with its tokenKey (com_sbps_system_token.js returns both):
    a pay without it is refused before anything is claimed or sent. The JSON pay and the
    form post both ask here."""
    return provider == "sbps" and bool(token) and not token_key


def lacks_three_ds(
    provider: str, required: bool, token: str | None, info: tuple[str | None, str | None]
) -> bool:
    """SBPS token pays run 3-D Secure 2.0 (mandatory for Japanese EC since 2025-03) unless
    SBPS_THREE_DS is off: a token pay without the info token and its key is refused before
    anything is claimed."""
    return provider == "sbps" and required and bool(token) and not (info[0] and info[1])


async def pay(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cs_id: str,
    *,
    token: str | None,
    card_num: int | None,
    result_mode: int,
    token_key: str | None = None,
    actor: str = "shopper",
    save_card: bool = False,
    client_ip: str | None = None,
    limits: velocity.Limits | None = None,
    pay_claim: timedelta = payments.PAY_CLAIM,
    method: str | None = None,
    installments: int | None = None,
    kickback_expected: timedelta = KICKBACK_EXPECTED,
    tds: ThreeDSInfo | None = None,
) -> PayResult:
    """`tds`: run the gateway's redirect 3-D Secure first (SBPS): the payment then stays
    pending with where the shopper goes (`three_ds.waiting_url`) and is charged by
    `complete_three_ds` once they are back. `save_card`: the shopper asked to save the card
    (honoured where the session offers it; a session with save_card saves it whatever the
    shopper says). `client_ip` and `limits`: card-testing limits (app/velocity.py).
    `pay_claim`: how long an earlier pay's payment may stay pending without its "about to
    send" mark before it counts as abandoned (failed, and the session paid again).
    `method`/`installments`: the shopper's choice of the session's payment methods (md/pt; a
    token carries md itself, a saved card's one-touch charge sends them).
    `kickback_expected`: when an rt=0 pay's kickback is late."""
    claim = await _claim(
        sessions,
        cs_id,
        card_num=card_num,
        result_mode=result_mode,
        actor=actor,
        save_card=save_card,
        client_ip=client_ip,
        limits=limits or velocity.Limits(),
        pay_claim=pay_claim,
        method=method,
        installments=installments,
    )
    if tds is not None and token is not None and card_num is None and not claim.register_first:
        claim.three_ds = tds
    settled = False

    async def settle(result: ChargeResult | None) -> None:
        nonlocal settled
        settled = True
        await velocity.settle(sessions, claim.reservation, result)

    try:
        sent = await _attempt(
            sessions,
            gateway,
            claim,
            token=token,
            token_key=token_key,
            card_num=card_num,
            after=settle,
            kickback_expected=kickback_expected,
        )
    except BaseException:
        if not settled:
            await settle(None)  # no answer: no longer in flight
        raise
    if not settled:
        await settle(None)  # not sent: it lost its claim before the mark
    p = sent.payment
    why = f" ({p.error_code})" if p.error_code else ""
    log.info("checkout %s payment %s: %s%s", cs_id, p.id, p.status, why)
    cs_row = claim.recorded_session if claim.charge_uid is None else None
    if sent.result is not None:
        await _after_combined(sessions, gateway, cs_id, sent.result, claim.charge_uid)
    if cs_row is None:  # not recorded with the answer, or changed after it (a card stored)
        async with sessions() as session:
            cs_row = await session.get(CheckoutSession, cs_id)
            assert cs_row is not None
    return PayResult(payment=p, session=cs_row, result=sent.result if sent.recorded else None)


async def complete_three_ds(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cs_id: str,
    payment_id: str,
    *,
    returned_id: str | None,
    client_ip: str | None = None,
    limits: velocity.Limits | None = None,
) -> Payment:
    """The shopper is back from 3-D Secure (our return URL): the one authorization call
    (SBPS ST01-00118-101), whatever the return's query says (hints only). A return for a
    payment of another session, or naming another authentication than the payment's, is
    refused with no call; a replayed or concurrent return finds the step claimed and only
    gets the payment as it stands. A refusal counts against the card-testing limits of the
    session's customer and of `client_ip` (the returning browser's), as a pay's would."""
    async with database_guard(DATABASE_DOWN_NOT_CHARGED), sessions() as session:
        p = await session.get(Payment, payment_id)
        if p is None or p.checkout_session_id != cs_id or p.tds_authentication_id is None:
            raise NotFound("No 3-D Secure step of this checkout session has that payment.")
        customer = await session.scalar(
            select(CheckoutSession.customer_uid).where(CheckoutSession.id == cs_id)
        )
        if returned_id and returned_id != p.tds_authentication_id:
            raise Unprocessable(
                "This 3-D Secure return names another authentication than its payment's.",
                code="three_ds_return_mismatch",
            )
        charge = AuthenticatedCharge(
            job=p.job,  # type: ignore[arg-type]
            authentication_id=p.tds_authentication_id,
            order_id=p.cod,  # what TA02 was sent (cod_for), checked again by SBPS
            amount=p.amount,
            tax=p.tax,
            shipping=p.shipping,
        )
    async with database_guard(DATABASE_DOWN_NOT_CHARGED):
        claimed = await three_ds.claim_authorization(sessions, payment_id)
    if not claimed:
        async with sessions() as session:
            current = await session.get(Payment, payment_id)
            assert current is not None
            return current
    crash_point("checkout.before_3ds_authorize")
    result = await gateway.complete_authentication(charge, ref=payment_id)
    crash_point("checkout.after_3ds_authorize")
    sent = await calls.record_answer(sessions, payment_id, result)
    await velocity.count_refusal(
        sessions, limits or velocity.Limits(), result, customer=customer, ip=client_ip
    )
    log.info("checkout %s payment %s after 3-D Secure: %s", cs_id, payment_id, sent.payment.status)
    return sent.payment


async def _claim(
    sessions: async_sessionmaker[AsyncSession],
    cs_id: str,
    *,
    card_num: int | None,
    result_mode: int,
    actor: str,
    save_card: bool,
    client_ip: str | None,
    limits: velocity.Limits,
    pay_claim: timedelta,
    method: str | None = None,
    installments: int | None = None,
) -> _Claim:
    """1. Claim the session: one live payment per session is enforced by a unique index, so
    of any number of concurrent pays exactly one gets past this commit. Without a database
    nothing is sent: a clean 503, nothing charged."""
    async with database_guard(DATABASE_DOWN_NOT_CHARGED), sessions() as session:
        stmt = select(CheckoutSession).where(CheckoutSession.id == cs_id).with_for_update()
        cs = ensure_payable((await session.execute(stmt)).scalar_one_or_none())
        await _ensure_claimable(session, cs, limits, pay_claim)
        _ensure_offered(cs, method, installments)
        reservation = await velocity.reserve(
            session, limits, customer=cs.customer_uid, ip=client_ip
        )
        customer: Customer | None = None
        if card_num is not None:
            customer, _card = await _saved_card(session, cs, card_num)
        cs.attempts += 1
        payment = _pending_payment(cs, card_num=card_num, result_mode=result_mode, actor=actor)
        session.add(payment)
        payments.add_event(session, payment, "created", to_status=Status.PENDING, actor=actor)
        try:
            await session.commit()
        except IntegrityError as exc:
            raise Conflict(
                "A payment for this checkout session is already being processed.",
                code="payment_in_progress",
            ) from exc
        register = (
            saves_card(cs, requested=save_card) and card_num is None and cs.customer_uid is not None
        )
        # A customer the gateway already has cannot be registered again in the payment call
        # (ER652): register the card on it first (carduser_token, the page ran 3-D Secure with
        # am=tx=sf=0 for it), then charge the new card one-touch. One charge either way.
        if register and customer is None:
            customer = await existing_customer(session, cs)
        register_first = register and customer is not None
        charge_uid = cs.customer_uid if register and not register_first else None
    chosen = None if method in (None, "10") else method
    return _Claim(
        cs,
        payment.id,
        reservation,
        customer,
        register_first,
        charge_uid,
        method=chosen,
        installments=installments if chosen == "61" else None,
    )


def _ensure_offered(cs: CheckoutSession, method: str | None, installments: int | None) -> None:
    """The shopper's md/pt must be one the session offers (lump sum when none is chosen)."""
    offered = cs.payment_methods or ["10"]
    chosen = method or "10"
    if chosen not in offered:
        raise Unprocessable(
            f"This checkout does not offer payment method {chosen}.",
            code="payment_method_not_offered",
            errors=[FieldError(field="method", message=f"one of {', '.join(offered)}")],
        )
    counts = cs.installment_counts or []
    if chosen == "61" and installments not in counts:
        raise Unprocessable(
            f"This checkout does not offer {installments} installments.",
            code="installments_not_offered",
            errors=[FieldError(field="installments", message=f"one of {counts}")],
        )


async def _ensure_claimable(
    session: AsyncSession, cs: CheckoutSession, limits: velocity.Limits, pay_claim: timedelta
) -> None:
    """Refuses a pay of a card page, of a session whose payment is live (unless an earlier
    pay abandoned it before sending), or past the session's attempt limit."""
    if cs.kind != Kind.PAYMENT:
        raise Unprocessable(
            "This page registers a card; it takes no payment.", code="not_a_payment"
        )
    existing = await live_payment(session, cs.id)
    if existing is not None and await _abandoned(session, existing, pay_claim):
        existing = None
    if existing is not None:
        raise Conflict(
            "A payment for this checkout session is already "
            + ("being processed." if existing.status in ("pending", "unknown") else "done."),
            code="payment_in_progress",
            extra={"payment_id": existing.id, "payment_status": existing.status},
        )
    if hosted.attempts_exhausted(cs, limits.per_session):
        VELOCITY_REJECTIONS.labels("session").inc()
        raise TooManyRequests(
            "Too many payment attempts for this checkout session.", code="too_many_attempts"
        )


def _pending_payment(
    cs: CheckoutSession, *, card_num: int | None, result_mode: int, actor: str
) -> Payment:
    payment_id = new_id("pay")
    return Payment(
        id=payment_id,
        kind="checkout",
        status=Status.PENDING,
        job=cs.job,
        checkout_session_id=cs.id,
        order_id=cs.order_id,
        cod=payments.cod_for(cs.order_id, payment_id),
        # An item_code payment's amounts are the merchant's until the gateway states its own.
        amount=cs.amount,
        tax=cs.tax,
        shipping=cs.shipping,
        item_code=cs.item_code,
        customer_uid=cs.customer_uid,
        card_num=card_num,
        result_mode=result_mode,
        created_by=actor,
        check_attempts=0,
        needs_attention=False,
        unsent=True,
        metadata_=cs.metadata_,
    )


async def _attempt(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    claim: _Claim,
    *,
    token: str | None,
    card_num: int | None,
    after: Callable[[ChargeResult], Awaitable[None]],
    token_key: str | None = None,
    kickback_expected: timedelta,
) -> calls.Sent:
    """2. The gateway calls of a claimed pay and 3. their answer recorded: the card's
    registration when it comes first (a failed one is the answer, nothing charged), then the
    one charge. `after`: run once the charge (or the failed registration) has answered."""
    registered_num: int | None = None
    if claim.register_first:
        assert claim.customer is not None and token is not None
        registered = await _register_first(
            sessions, gateway, claim.cs.id, claim.payment_id, claim.customer, token, token_key
        )
        if isinstance(registered, ChargeResult):
            await after(registered)
            return await calls.record_answer(sessions, claim.payment_id, registered)
        card_num = registered_num = registered

    def send() -> Awaitable[ChargeResult]:
        return _send(gateway, claim, token=token, token_key=token_key, card_num=card_num)

    # Our payment id goes as a free parameter (echoed in the kickback: it names this
    # attempt), and, without its "_", as cod when the merchant gave no order id.
    return await calls.send_and_record(
        sessions,
        claim.payment_id,
        send,
        crash_at="checkout.before_send",
        after_send=after,
        record=_recorder(claim, registered_num),
        kickback_expected=kickback_expected,
    )


async def _send(
    gateway: PaymentGateway,
    claim: _Claim,
    *,
    token: str | None,
    card_num: int | None,
    token_key: str | None = None,
) -> ChargeResult:
    cs, payment_id, customer = claim.cs, claim.payment_id, claim.customer
    amounts: dict[str, Any] = {
        "amount": None if cs.item_code else cs.amount,
        "tax": None if cs.item_code else cs.tax,
        "shipping": None if cs.item_code else cs.shipping,
        "item_code": cs.item_code,
        "order_id": payments.cod_for(cs.order_id, payment_id),
        "email": cs.email,
        "phone": cs.phone,
        # The merchant's metadata and our payment ref, as free parameters (その他データ).
        "extra": {**(cs.metadata_ or {}), **payment_ref(payment_id)},
    }
    if customer is not None and card_num is not None:
        onetouch = OnetouchCharge(
            job=cs.job,  # type: ignore[arg-type]
            customer_id=customer.uid,
            customer_key=customer.key,
            card_seq=card_num,
            method=claim.method,
            installments=claim.installments,
            # em/pn with a one-touch charge overwrite the contact the gateway holds for the
            # customer (seed 000 p.12: 登録されているユーザー情報が変更されます): a checkout
            # session's contact is the order's, not a change of the customer's.
            **{**amounts, "email": None, "phone": None},
        )
        return await gateway.charge_onetouch(onetouch, ref=payment_id)
    assert token is not None
    charge = TokenCharge(
        job=cs.job,  # type: ignore[arg-type]
        token=token,
        # SBPS's tokenKey (None with ROBOT PAYMENT, which has none).
        token_key=token_key,
        customer_id=claim.charge_uid,
        three_ds=claim.three_ds.start(cs.id, payment_id) if claim.three_ds else None,
        # SBPS takes the choice with the charge; ROBOT PAYMENT took it with the token.
        method=claim.method,
        installments=claim.installments,
        **amounts,
    )
    return await gateway.charge_token(charge, ref=payment_id)


def _recorder(claim: _Claim, card_num: int | None) -> calls.Recorder:
    """What a pay records beside the answer, in its transaction: the card it registered. It
    also keeps the session row as that transaction left it, for the pay's answer (one read
    fewer per pay: a completed session is already loaded there)."""
    cs, charge_uid = claim.cs, claim.charge_uid

    async def record(session: AsyncSession, p: Payment, result: ChargeResult) -> None:
        claim.recorded_session = await session.get(CheckoutSession, cs.id)
        three_ds.note_redirect(p, result)
        if card_num is not None and p.card_num is None:
            p.card_num = card_num
        if (
            result.outcome == Outcome.SUCCESS
            and charge_uid
            and result.customer_key
            and result.card_seq
        ):
            await store_registered_card(
                session, charge_uid, str(result.customer_key), int(result.card_seq), cs
            )

    return record


async def _abandoned(session: AsyncSession, existing: Payment, claim: timedelta) -> bool:
    """Fails the session's live payment if an earlier pay claimed it and stopped before
    sending (its claim expired without the "about to send" mark): the session may be paid
    again at once instead of waiting for reconciliation. The row lock and the conditional mark
    make sure the earlier pay, if it is only slow, can no longer send."""
    if not payments.never_sent(existing, claim=claim):
        return False
    locked = await payments.lock_payment(session, existing.id)
    if locked is None or not await payments.fail_if_never_sent(
        session, locked, claim=claim, actor="system"
    ):
        return False
    await session.flush()  # before the new payment: one live payment per session
    log.warning("checkout %s: payment %s never sent; failed", locked.checkout_session_id, locked.id)
    return True


async def _register_first(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cs_id: str,
    payment_id: str,
    customer: Customer,
    token: str,
    token_key: str | None = None,
) -> int | ChargeResult:
    """Registers the token's card on the existing customer; its num, or (nothing charged) a
    failed ChargeResult carrying the gateway's error for the payment."""
    result = await gateway.register_card(
        customer.uid, customer.key, token, ref=payment_id, token_key=token_key
    )
    if result.outcome != Outcome.SUCCESS or result.card_seq is None:
        # No charge was attempted, whatever happened to the registration (a lost answer may
        # have registered the card: the customer's next sync finds it).
        declined = result.outcome == Outcome.DECLINED
        return ChargeResult(
            outcome=Outcome.DECLINED if declined else Outcome.FAILED,
            error=result.error,
            call=result.call,
        )
    try:
        await customers.store_card(
            sessions,
            gateway,
            customer.uid,
            customer.key,
            result.card_seq,
            actor=f"checkout:{cs_id}",
            type_="card_registered",
            cs_id=cs_id,
        )
    except Exception:
        # The card is registered at the gateway; the charge needs only its num. Our copy is
        # repaired by the next sync.
        log.exception("checkout %s: card %s not stored", cs_id, result.card_seq)
    return result.card_seq


async def _after_combined(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cs_id: str,
    result: ChargeResult,
    charge_uid: str | None,
) -> None:
    """After the combined path (gateway_token.aspx with uid): read the new card back for its
    masked number and expiry; on ER652 (the gateway has the uid, we did not) import the user so
    the next attempt registers the card on it."""
    if charge_uid is None:
        return
    try:
        if (
            result.outcome == Outcome.SUCCESS
            and result.customer_key
            and result.card_seq is not None
        ):
            await customers.store_card(
                sessions,
                gateway,
                charge_uid,
                str(result.customer_key),
                int(result.card_seq),
                actor=f"checkout:{cs_id}",
                type_="card_registered",
                cs_id=cs_id,
            )
        elif result.error is not None and result.error.kind == ErrorKind.CUSTOMER_EXISTS:
            await customers.import_customer(
                sessions, gateway, charge_uid, actor=f"checkout:{cs_id}"
            )
    except Exception:
        log.exception("checkout %s: stored card of %s not refreshed", cs_id, charge_uid)


async def existing_customer(session: AsyncSession, cs: CheckoutSession) -> Customer | None:
    """The session's customer if our copy has it active (its cards get registered by
    carduser_token before a one-touch charge instead of the combined payment call)."""
    if not cs.customer_uid:
        return None
    customer = await session.get(Customer, cs.customer_uid)
    return customer if customer is not None and customer.status == "active" else None


def saves_card(cs: CheckoutSession, *, requested: bool) -> bool:
    return bool(cs.save_card or (cs.offer_save_card and requested))


async def registers_first(
    session: AsyncSession, cs: CheckoutSession, *, requested: bool = False
) -> bool:
    """True when a new card on this page is registered before it is charged: 3-D Secure then
    runs with am=tx=sf=0 (card registration), not with the payment's amounts."""
    return saves_card(cs, requested=requested) and await existing_customer(session, cs) is not None


async def _saved_card(
    session: AsyncSession, cs: CheckoutSession, num: int
) -> tuple[Customer, Card]:
    if cs.customer_uid is None:
        raise Unprocessable("This checkout session has no customer with saved cards.")
    customer = await session.get(Customer, cs.customer_uid)
    card = (
        await session.execute(
            select(Card).where(
                Card.customer_uid == cs.customer_uid, Card.num == num, Card.status == "active"
            )
        )
    ).scalar_one_or_none()
    if customer is None or customer.status != "active" or card is None:
        raise Unprocessable(
            "Unknown saved card.",
            errors=[FieldError(field="card_num", message="not a saved card of this customer")],
        )
    return customer, card


async def store_registered_card(
    session: AsyncSession, uid: str, key: str, num: int, cs: CheckoutSession
) -> None:
    """The gateway registered user + card in the payment call (its answer, or in rt=0 its
    kickback): keep our copy in step. Idempotent."""
    actor = f"checkout:{cs.id}"
    customer = await customers.lock_customer(session, uid)
    if customer is None:
        customer = Customer(uid=uid, key=key, email=cs.email, phone=cs.phone)
        session.add(customer)
        customers.add_event(
            session,
            uid,
            "customer_created",
            actor=actor,
            data={"email": cs.email, "phone": cs.phone},
        )
    else:
        customer.key = key
        customer.status = "active"
    card = (
        await session.execute(select(Card).where(Card.customer_uid == uid, Card.num == num))
    ).scalar_one_or_none()
    if card is None:
        # The masked number and expiry are read back (cmd 6) right after this commit.
        session.add(Card(customer_uid=uid, num=num, status="active"))
    await session.flush()


async def saved_cards(session: AsyncSession, cs: CheckoutSession) -> list[Card]:
    if not cs.customer_uid:
        return []
    stmt = (
        select(Card)
        .where(Card.customer_uid == cs.customer_uid, Card.status == "active")
        .order_by(Card.num)
    )
    return list((await session.execute(stmt)).scalars())


def page_status(p: Payment | None) -> str:
    """What the shopper sees: succeeded, failed, unknown or pending."""
    if p is None:
        return "pending"
    status = Status(p.status)
    if status in (Status.AUTHORIZED, Status.CAPTURED):
        return "succeeded"
    if status in (Status.FAILED, Status.CANCELED):
        return "failed"
    return "unknown" if status == Status.UNKNOWN else "pending"


async def expire_sessions(sessions: async_sessionmaker[AsyncSession], *, limit: int = 200) -> int:
    """Marks open payment pages past their expiry 'expired' and tells the shop
    (checkout.session.expired). A page with a payment that is not failed is left alone: its
    payment decides (a late success still completes it). Rows another replica holds are
    skipped. Returns how many expired."""
    live = select(Payment.id).where(
        Payment.checkout_session_id == CheckoutSession.id, Payment.status != Status.FAILED
    )
    async with sessions() as session:
        stmt = (
            select(CheckoutSession)
            .where(
                CheckoutSession.kind == Kind.PAYMENT,
                CheckoutSession.status == "open",
                CheckoutSession.expires_at <= utcnow(),
                ~live.exists(),
            )
            .order_by(CheckoutSession.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        due = list((await session.execute(stmt)).scalars())
        for cs in due:
            cs.status = "expired"
            outbox.emit(session, "checkout.session.expired", cs)
        await session.commit()
    if due:
        log.info("checkout: %d session(s) expired", len(due))
    return len(due)


async def expiry_loop(
    sessions: async_sessionmaker[AsyncSession], *, interval: float = 30.0
) -> None:
    """`expire_sessions` every `interval` seconds, forever (every replica may run one)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await expire_sessions(sessions)
        except Exception as exc:  # the database may be down: try again next round
            log.warning("session expiry deferred: %s", exc)
