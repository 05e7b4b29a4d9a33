"""Ops operations on a payment: capture (SALES), cancel (CANCEL), re-authorize, resolve by hand.

Each gateway operation: (1) under the payment's row lock check the request against the state
machine, claim the payment for this operation (an `operation_started` event; a second one is
refused while it is in flight) and commit; (2) call the gateway with no lock held; (3) record the
answer under the row lock. A refusal that may only mean our view is stale (ER032 after SALES,
ER033 after CANCEL) and an answer that never arrived are checked against the charges search
API before anything changes; nothing is ever retried blindly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import new_id, utcnow
from app.errors import AppError, Conflict, NotFound, PaymentDeclined, problem_for
from app.gateway.base import (
    ChargeResult,
    ErrorKind,
    GatewayErrorInfo,
    Outcome,
    PaymentGateway,
    Reauthorization,
    SearchError,
    payment_ref,
)
from app.idempotency import InProgress, bind
from app.payments import evidence, service
from app.payments.evidence import status_of
from app.payments.models import Payment, PaymentEvent
from app.payments.states import (
    REAUTH_MESSAGES,
    InvalidTransition,
    Operation,
    OperationNotAllowed,
    Status,
    check_operation,
    check_resolution,
    reauth_refusal,
)

log = logging.getLogger(__name__)

# Longer than any gateway call (its deadline is about 40 s): an operation whose process died
# stops blocking the payment after this.
OPERATION_LEASE = timedelta(minutes=5)
_CAPTURE_REJECTED = "capture_rejected"


def _state(p: Payment) -> dict[str, Any]:
    return {"payment_id": p.id, "payment_status": p.status}


def _conflict(message: str, code: str, p: Payment, gateway_code: str | None = None) -> Conflict:
    extra = _state(p) | ({"gateway_code": gateway_code} if gateway_code else {})
    return Conflict(message, code=code, extra=extra)


# --- step 1: claim --------------------------------------------------------------------------


async def _in_flight(session: AsyncSession, payment_id: str) -> PaymentEvent | None:
    last = await session.scalar(
        select(PaymentEvent)
        .where(
            PaymentEvent.payment_id == payment_id,
            PaymentEvent.type.in_(("operation_started", "operation_finished")),
        )
        .order_by(PaymentEvent.id.desc())
        .limit(1)
    )
    if last is None or last.type != "operation_started":
        return None
    return last if last.created_at > utcnow() - OPERATION_LEASE else None


async def running_until(session: AsyncSession, payment_id: str) -> datetime | None:
    """When the operation in flight on this payment stops blocking it; None if none is."""
    running = await _in_flight(session, payment_id)
    return running.created_at + OPERATION_LEASE if running is not None else None


@dataclass(frozen=True)
class _Claimed:
    payment: Payment
    # The re-check the claim scheduled (the janitor settles the payment after a crash), and
    # the one it replaced: a finished operation puts that one back.
    check: datetime
    prior_check: datetime | None
    new: Payment | None = None  # a re-authorization's new payment, made before the call


async def _claim(
    sessions: async_sessionmaker[AsyncSession],
    payment_id: str,
    operation: Operation,
    *,
    actor: str,
    reauth: ReauthRequest | None = None,
) -> _Claimed:
    async with sessions() as session:
        p = await service.lock_payment(session, payment_id)
        if p is None:
            raise NotFound(f"No payment {payment_id!r}.")
        try:
            check_operation(operation, p.status)
        except OperationNotAllowed as exc:
            raise _conflict(exc.message, "invalid_transition", p) from exc
        if p.gid is None:
            raise _conflict("This payment has no gateway payment number (gid).", "no_gid", p)
        running = await _in_flight(session, p.id)
        if running is not None:
            what = (running.data or {}).get("operation", "an operation")
            raise InProgress(
                f"A {what} of this payment is in progress; retry when it has finished.",
                code="operation_in_progress",
                extra=_state(p),
            )
        data: dict[str, Any] = {"operation": str(operation), "gid": p.gid}
        new: Payment | None = None
        if operation == Operation.REAUTHORIZE:
            assert reauth is not None
            await _check_reauth(session, p)
            data |= {"amount": reauth.amount, "tax": reauth.tax, "shipping": reauth.shipping}
            # Before re_auth.aspx is called: a crash then leaves a pending payment that the
            # janitor settles from the charges search, never a charge nobody tracks.
            new = _new_reauth_payment(session, p, reauth, actor)
            data["new_payment_id"] = new.id
            await bind(session, "payment", new.id)
        prior = p.next_check_at
        # After the operation's lease the janitor looks at the gateway's records: if this
        # process dies mid-call, the payment still ends as the gateway says.
        check = utcnow() + OPERATION_LEASE
        p.next_check_at = check
        if new is not None:
            new.next_check_at = check
        service.add_event(session, p, "operation_started", actor=actor, data=data)
        await session.commit()
        return _Claimed(p, check, prior, new)


async def _check_reauth(session: AsyncSession, p: Payment) -> None:
    refusal = reauth_refusal(
        item_code=p.item_code, job=p.job, created_at=p.created_at, now=utcnow()
    )
    if refusal is not None:
        raise _conflict(REAUTH_MESSAGES[refusal], str(refusal), p)
    open_child = await session.scalar(
        select(Payment.id).where(
            Payment.reauth_of_id == p.id,
            Payment.status.in_((Status.PENDING, Status.UNKNOWN)),
        )
    )
    if open_child is not None:
        raise _conflict(
            f"An earlier re-authorization ({open_child}) has no confirmed result yet; "
            "reconcile or resolve it first.",
            "reauth_unconfirmed",
            p,
        )


# --- step 2 helpers: what the search API says -----------------------------------------------


async def search_status(gateway: PaymentGateway, gid: int) -> Status | None:
    """The status the charges search shows for `gid`, or None (no row, unsettled, or the
    search itself failed: read-only, so callers may simply ask again later)."""
    try:
        rows = await gateway.search_charges(charge_id=gid)
    except SearchError as exc:
        log.warning("charges search for gid %s failed: %s", gid, exc)
        return None
    for row in rows:
        if row.charge_id == gid:
            return status_of(row)
    return None


# --- step 3: record -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Finish:
    outcome: str
    gateway_code: str | None = None
    note: str | None = None
    new_payment_id: str | None = None


def _finish(session: AsyncSession, p: Payment, op: Operation, actor: str, f: _Finish) -> None:
    data: dict[str, Any] = {"operation": str(op), "outcome": f.outcome}
    if f.gateway_code:
        data["gateway_code"] = f.gateway_code
    if f.new_payment_id:
        data["new_payment_id"] = f.new_payment_id
    service.add_event(session, p, "operation_finished", actor=actor, reason=f.note, data=data)


def _schedule_check(p: Payment) -> None:
    """Leaves the status alone and lets the reconciler look at the gateway's records soon."""
    p.next_check_at = utcnow() + service.FIRST_CHECK_DELAY
    p.check_attempts = 0


def _unschedule(p: Payment, claimed: _Claimed) -> None:
    """The operation finished with a definite answer: its crash re-check is not needed (a
    status change or another schedule made since is kept)."""
    if p.next_check_at == claimed.check:
        p.next_check_at = claimed.prior_check


async def capture(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    payment_id: str,
    *,
    actor: str,
) -> Payment:
    claimed = await _claim(sessions, payment_id, Operation.CAPTURE, actor=actor)
    assert claimed.payment.gid is not None
    result = await gateway.capture(claimed.payment.gid, ref=claimed.payment.id)
    return await _record_sales_or_cancel(
        sessions, gateway, claimed, Operation.CAPTURE, result, actor
    )


async def cancel(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    payment_id: str,
    *,
    actor: str,
) -> Payment:
    claimed = await _claim(sessions, payment_id, Operation.CANCEL, actor=actor)
    assert claimed.payment.gid is not None
    result = await gateway.cancel(claimed.payment.gid, ref=claimed.payment.id)
    return await _record_sales_or_cancel(
        sessions, gateway, claimed, Operation.CANCEL, result, actor
    )


async def _record_sales_or_cancel(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    claim: _Claimed,
    op: Operation,
    result: ChargeResult,
    actor: str,
) -> Payment:
    shown = await _confirm_refusal(gateway, claim.payment, result)
    async with sessions() as session:
        p = await service.lock_payment(session, claim.payment.id)
        assert p is not None
        problem = await _record_operation(session, p, claim, op, result, shown, actor)
        _unschedule(p, claim)
        await session.commit()
    log.info("%s of payment %s by %s: %s", op, p.id, actor, p.status)
    if problem is not None:
        raise problem
    return p


async def _confirm_refusal(
    gateway: PaymentGateway, claimed: Payment, result: ChargeResult
) -> Status | None:
    """What the charges search shows after an answer that may only mean our view is stale
    (ER032/ER033) or that never arrived; None when there was no need to ask (or no answer)."""
    # A stale-view refusal may only mean we have not seen an earlier change: confirm it.
    kind = result.error.kind if result.error else None
    if result.outcome == Outcome.SUCCESS:
        return None
    if result.outcome != Outcome.UNKNOWN and kind != ErrorKind.STALE_VIEW:
        return None
    assert claimed.gid is not None
    return await search_status(gateway, claimed.gid)


async def _record_operation(
    session: AsyncSession,
    p: Payment,
    claim: _Claimed,
    op: Operation,
    result: ChargeResult,
    shown: Status | None,
    actor: str,
) -> AppError | None:
    """Records a capture's or cancel's answer on `p` (locked); the problem to answer, if any."""
    target = Status.CAPTURED if op == Operation.CAPTURE else Status.CANCELED
    info = result.error
    code = info.code if info else None
    if result.outcome == Outcome.SUCCESS:
        success = evidence.claim_for(target)
        await evidence.record_answer(session, p.id, result, success=success, actor=actor)
        _finish(session, p, op, actor, _Finish("success"))
        return None
    if shown is not None and shown != Status(claim.payment.status):
        # The gateway's records show a change (ours, or one we had not seen).
        await _believe(session, p, shown, actor=actor, code=code)
        _finish(session, p, op, actor, _Finish(f"confirmed_{shown}", code))
        if shown == target:
            return None
        return _conflict(
            f"The gateway refused ({code}): the payment is {shown}.",
            info.stable_code if info else "invalid_transition",
            p,
            code,
        )
    assert info is not None
    if result.outcome == Outcome.UNKNOWN:
        _schedule_check(p)
        _finish(session, p, op, actor, _Finish("unknown", code))
        return problem_for(
            info,
            f"The gateway did not confirm the {op} ({code}). It may or may not have "
            f"happened: the payment stays {p.status} until the charges search shows "
            "what happened (checked automatically; POST /v1/reconciliations checks now). "
            "Do not repeat it blindly.",
            _state(p),
        )
    if info.kind == ErrorKind.STALE_VIEW and shown is None:
        _schedule_check(p)  # the search could not tell: look again soon
    _finish(session, p, op, actor, _Finish(str(result.outcome), code))
    return _refusal(op, info, shown, p)


async def _believe(
    session: AsyncSession, p: Payment, shown: Status, *, actor: str, code: str | None
) -> None:
    """Applies what the charges search shows; evidence.apply flags the payment when it
    contradicts us."""
    await evidence.apply(
        session,
        p.id,
        evidence.Evidence(source=evidence.Source.SEARCH, claim=evidence.claim_for(shown)),
        actor=actor,
        reason=f"confirmed by the charges search after {code}",
        data={"gid": p.gid, "source": "search", "gateway_code": code},
    )


def _refusal(
    op: Operation, info: GatewayErrorInfo, evidence: Status | None, p: Payment
) -> AppError:
    if op == Operation.CAPTURE and info.kind == ErrorKind.STALE_VIEW and evidence is not None:
        # The search shows the payment unchanged: the refusal did not mean "already captured"
        # (e.g. the 90-day capture limit has passed).
        return _conflict(
            f"The gateway refused the capture ({info.code}) and its records show the payment still "
            f"{evidence}: it can no longer be captured (for example, more than 90 days after "
            "the authorization).",
            _CAPTURE_REJECTED,
            p,
            info.code,
        )
    return problem_for(info, info.message_en, _state(p))


# --- re-authorization -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReauthRequest:
    amount: int
    tax: int = 0
    shipping: int = 0
    email: str | None = None
    phone: str | None = None


async def reauthorize(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    payment_id: str,
    request: ReauthRequest,
    *,
    actor: str,
) -> Payment:
    """Cancels the payment's gid and authorizes the new amounts under a new gid: on success the
    new payment (kind 'reauth', linked to the old one, made pending before the call) and the
    old one canceled, together."""
    claimed = await _claim(sessions, payment_id, Operation.REAUTHORIZE, actor=actor, reauth=request)
    old, created = claimed.payment, claimed.new
    assert old.gid is not None and created is not None
    result = await gateway.reauthorize(
        Reauthorization(
            charge_id=old.gid,
            amount=request.amount,
            tax=request.tax,
            shipping=request.shipping,
            email=request.email,
            phone=request.phone,
            extra=payment_ref(created.id),
        ),
        ref=old.id,
    )
    shown: Status | None = None
    if result.outcome not in (Outcome.SUCCESS, Outcome.UNKNOWN):
        # A refused or declined re-authorization should leave the old payment as it was;
        # the gateway's records say whether it really did.
        shown = await search_status(gateway, old.gid)
    async with sessions() as session:
        locked = await service.lock_payment(session, old.id)
        new = await service.lock_payment(session, created.id)
        assert locked is not None and new is not None
        problem = await _record_reauth(session, claimed, locked, new, result, shown, actor)
        await session.commit()
    log.info("re-authorization of %s by %s: %s", old.id, actor, result.outcome)
    if problem is not None:
        raise problem
    return new


async def _record_reauth(
    session: AsyncSession,
    claimed: _Claimed,
    old: Payment,
    new: Payment,
    result: ChargeResult,
    shown: Status | None,
    actor: str,
) -> AppError | None:
    """Records a re-authorization's answer on the old payment and its new one (both locked);
    the problem to answer, if any."""
    if result.outcome in (Outcome.SUCCESS, Outcome.DECLINED, Outcome.UNKNOWN, Outcome.PENDING):
        # The gateway made (or may have made) a new payment: our row records its answer.
        await evidence.record_answer(session, new.id, result)
    else:
        # Refused before any charge: the row made for it stands for nothing.
        await _drop_unsent(session, new)
    if result.outcome == Outcome.SUCCESS:
        await evidence.apply(
            session,
            old.id,
            evidence.Evidence(source=evidence.Source.ANSWER, claim=evidence.Claim.CANCELED),
            actor=actor,
            reason=f"re-authorized as {new.id}",
            data={"gid": old.gid, "new_payment_id": new.id, "new_gid": result.charge_id},
        )
        _finish(session, old, Operation.REAUTHORIZE, actor, _Finish("success", None, None, new.id))
        return None
    if result.outcome == Outcome.PENDING:
        # Accepted for a later kickback (we always send rt=1, so only a gateway that ignores
        # it lands here): the new row stays pending and both are checked by the search.
        _schedule_check(old)
        _finish(session, old, Operation.REAUTHORIZE, actor, _Finish("pending", None, None, new.id))
        return reauth_answer(new)
    info = result.error
    assert info is not None
    if result.outcome == Outcome.UNKNOWN:
        _schedule_check(old)
        _finish(
            session, old, Operation.REAUTHORIZE, actor, _Finish("unknown", info.code, None, new.id)
        )
        return problem_for(
            info,
            f"The gateway did not confirm the re-authorization ({info.code}). Payment {new.id} "
            "records it as unknown until the charges search shows whether it happened "
            "(checked automatically); the old payment is checked too. Do not repeat it.",
            {**_state(new), "reauth_of": old.id},
        )
    declined = result.outcome == Outcome.DECLINED
    if shown is not None and shown != Status(old.status):
        await _believe(session, old, shown, actor=actor, code=info.code)
    finish = _Finish(str(result.outcome), info.code, None, new.id if declined else None)
    _finish(session, old, Operation.REAUTHORIZE, actor, finish)
    _unschedule(old, claimed)
    extra = {**_state(new if declined else old), "reauth_of": old.id}
    if declined:
        return PaymentDeclined(
            info.message_en, code=info.stable_code, extra={"gateway_code": info.code, **extra}
        )
    return problem_for(info, info.message_en, extra)


def reauth_answer(new: Payment) -> AppError | None:
    """The problem a re-authorization answered for its new payment as it stands (None:
    it succeeded), for a retry of its Idempotency-Key that finds the first answer lost."""
    status = Status(new.status)
    if status in (Status.AUTHORIZED, Status.CAPTURED, Status.CANCELED):
        return None
    extra = {**_state(new), "reauth_of": new.reauth_of_id}
    if status == Status.FAILED:
        return PaymentDeclined(
            new.error_message or "The re-authorization was declined.",
            code="card_declined",
            extra={"gateway_code": new.error_code, **extra},
        )
    return Conflict(
        f"The re-authorization's result is not confirmed yet: payment {new.id} is "
        f"{new.status} until the charges search shows what happened (checked "
        "automatically; POST /v1/reconciliations checks now). Do not repeat it.",
        code="reauth_unconfirmed",
        extra=extra,
    )


def _new_reauth_payment(
    session: AsyncSession, old: Payment, request: ReauthRequest, actor: str
) -> Payment:
    # The gateway keeps the kind: AUTH while the old one was uncaptured, CAPTURE after.
    job = "CAPTURE" if Status(old.status) == Status.CAPTURED else "AUTH"
    p = Payment(
        id=new_id("pay"),
        kind="reauth",
        status=Status.PENDING,
        job=job,
        order_id=old.order_id,
        cod=old.cod,  # the gateway copies the replaced payment's cod
        amount=request.amount,
        tax=request.tax,
        shipping=request.shipping,
        customer_uid=old.customer_uid,
        card_num=old.card_num,
        result_mode=1,
        reauth_of_id=old.id,
        created_by=actor,
        check_attempts=0,
        needs_attention=False,
        # No "about to send" fence here: from its creation it may have been sent.
        unsent=False,
    )
    session.add(p)
    service.add_event(
        session,
        p,
        "created",
        to_status=Status.PENDING,
        actor=actor,
        data={"reauth_of": old.id, "old_gid": old.gid},
    )
    return p


async def _drop_unsent(session: AsyncSession, new: Payment) -> None:
    """Removes a re-authorization's row when the gateway refused the request before charging
    (it never was a payment); if anything settled it meanwhile, it is kept and failed."""
    if Status(new.status) != Status.PENDING or new.gid is not None:
        await evidence.apply(
            session,
            new.id,
            evidence.Evidence(source=evidence.Source.ANSWER, claim=evidence.Claim.FAILED),
            actor="gateway",
            reason="refused",
        )
        return
    await session.execute(delete(PaymentEvent).where(PaymentEvent.payment_id == new.id))
    await session.delete(new)


# --- manual resolution ----------------------------------------------------------------------


async def resolve(
    sessions: async_sessionmaker[AsyncSession],
    payment_id: str,
    target: Status,
    *,
    reason: str,
    gid: int | None,
    actor: str,
) -> Payment:
    """A person settles a payment the gateway's records could not (or that was flagged)."""
    async with sessions() as session:
        p = await service.lock_payment(session, payment_id)
        if p is None:
            raise NotFound(f"No payment {payment_id!r}.")
        try:
            check_resolution(p.status, target, flagged=p.needs_attention)
        except InvalidTransition as exc:
            raise _conflict(
                f"A {p.status} payment{' (flagged)' if p.needs_attention else ''} cannot be "
                f"resolved as {target}: only pending or unknown payments, or flagged ones, "
                "and only forward.",
                "invalid_transition",
                p,
            ) from exc
        if gid is not None and gid != p.gid:
            if p.gid is not None:
                raise _conflict(f"This payment already has gid {p.gid}.", "gid_mismatch", p)
            owner = await session.scalar(select(Payment.id).where(Payment.gid == gid))
            if owner is not None:
                raise _conflict(f"gid {gid} belongs to payment {owner}.", "gid_taken", p)
        was_flagged = p.needs_attention
        # Moved, or (a flagged payment) confirmed as it stands: either way on the record, and
        # the flag is cleared.
        await evidence.apply(
            session,
            p.id,
            evidence.Evidence(
                source=evidence.Source.OPERATOR, claim=evidence.claim_for(target), charge_id=gid
            ),
            actor=actor,
            reason=reason,
            data={"manual": True, "gid": gid or p.gid},
        )
        await session.commit()
    log.warning(
        "payment %s resolved by hand as %s by %s%s: %s",
        p.id,
        target,
        actor,
        " (was flagged)" if was_flagged else "",
        reason,
    )
    return p
