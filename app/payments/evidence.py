"""The one place a payment changes because someone says something about it.

Every source states its news as an `Evidence`: the gateway's answer to our own call, a
notification (kickback), the charges search, a person resolving by hand, or our own records
(a pay that never sent, an answer we could not store). `decide` is the pure rule of what that
evidence does to a payment as it stands (`Facts`): a new status or none, which references and
amounts to record, which error to record or keep, whether a person must look, when to check
again. `apply` is the only writer: under the payment's row lock it runs `decide`, writes the
fields, events and metrics, and completes the payment's checkout session under that session's
row lock. It takes an AsyncSession and never commits; it never calls the gateway.

The rules `decide` keeps (tests/unit/test_evidence.py):
- nothing moves backwards: late or stale evidence changes no status (from the gateway's
  records it is a contradiction, flagged for a person);
- `unknown` is never turned into `failed` by an answer that only says "no answer";
- references (charge id, order number, approval code) are filled in, never replaced;
- a product payment's content ID/password (id/ps) is filled in once, from a success;
- the gateway's amounts are recorded only for product-registered (item_code) payments (our
  row holds what the merchant asked, the gateway's product register sets the price), only
  from a success and only while the payment is open: a settled payment's money fields never
  change;
- an error is recorded when the evidence moves the payment (or fills an empty one); a late
  answer never replaces a real decline reason; a success from an open state clears the
  timeout that made it open.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.events import outbox
from app.gateway.base import ChargeRecord, ChargeResult, ChargeStatus, Outcome

# The one import of the checkout-session model in payments: completing a session is part of
# applying evidence to its payment, and happens only here.
from app.hosted.models import CheckoutSession
from app.metrics import observe_transition
from app.payments.models import Payment
from app.payments.rows import FIRST_CHECK_DELAY, KICKBACK_EXPECTED, add_event, lock_payment
from app.payments.states import Status, is_forward

log = logging.getLogger(__name__)
T = TypeVar("T", int, str)

OPEN = frozenset({Status.PENDING, Status.UNKNOWN})
SUCCEEDED = frozenset({Status.AUTHORIZED, Status.CAPTURED})


class Source(StrEnum):
    ANSWER = "answer"  # the gateway's answer to a call we made
    NOTIFICATION = "notification"  # a kickback
    SEARCH = "search"  # the gateway's charges search
    OPERATOR = "operator"  # a person, by hand, with a reason
    SYSTEM = "system"  # our own records: a pay that never sent, an answer not stored


# Sources that speak for the gateway: their success replaces the error an open payment had.
_GATEWAY = frozenset({Source.ANSWER, Source.NOTIFICATION, Source.SEARCH})


class Claim(StrEnum):
    """What the source says the payment is. SUCCEEDED: charged as its job asked (authorized
    for AUTH/CHECK, captured for CAPTURE); the others name the status itself."""

    SUCCEEDED = "succeeded"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    CANCELED = "canceled"
    FAILED = "failed"
    PENDING = "pending"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Amounts:
    amount: int
    tax: int = 0
    shipping: int = 0


@dataclass(frozen=True, slots=True)
class ErrorNote:
    code: str  # what payments.error_code keeps
    message: str  # what payments.error_message keeps (English)


@dataclass(frozen=True, slots=True)
class Content:
    """The content ID and password a product-registered payment issues (id/ps)."""

    id: str | None
    password: str | None

    @classmethod
    def stated(cls, id_: str | None, password: str | None) -> Content | None:
        return cls(id_, password) if id_ or password else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    source: Source
    claim: Claim | None = None  # None: it only states references (e.g. a failed charge's gid)
    charge_id: int | None = None  # the gateway's payment number
    order_number: str | None = None
    approval_code: str | None = None
    amounts: Amounts | None = None  # only when the gateway states them
    content: Content | None = None  # a product payment's issued content ID/password
    error: ErrorNote | None = None
    trusted: bool = False  # a notification that came on the secret path from an allowed peer
    confirmed: bool = False  # shown true by the gateway's own records (the charges search)
    flag: str | None = None  # the source itself asks a person to look (why)

    @property
    def from_records(self) -> bool:
        """Backed by the gateway's records: where it disagrees with us, a person must look."""
        return self.confirmed or self.trusted or self.source == Source.SEARCH


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    """What `decide` needs of a payment."""

    status: Status
    job: str
    gid: int | None = None
    god: str | None = None
    ap: str | None = None
    item_code: str | None = None
    amounts: Amounts = Amounts(0)
    error_code: str | None = None
    has_content: bool = False

    @classmethod
    def of(cls, p: Payment) -> Facts:
        return cls(
            status=Status(p.status),
            job=p.job,
            gid=p.gid,
            god=p.god,
            ap=p.ap,
            item_code=p.item_code,
            amounts=Amounts(p.amount, p.tax, p.shipping),
            error_code=p.error_code,
            has_content=bool(p.content_id or p.content_password),
        )


class NextCheck(StrEnum):
    KEEP = "keep"  # whatever is scheduled stays
    SOON = "soon"  # FIRST_CHECK_DELAY from now
    KICKBACK = "kickback"  # KICKBACK_EXPECTED from now: when a late kickback is searched for
    NONE = "none"  # nothing to check


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    status: Status | None = None  # the new status; None: it stays
    charge_id: int | None = None  # references to fill in (None: leave as is)
    order_number: str | None = None
    approval_code: str | None = None
    amounts: Amounts | None = None  # the gateway's amounts to record
    content: Content | None = None  # to record (filled in, never replaced)
    error: ErrorNote | None = None  # to record
    clear_error: bool = False
    flag: str | None = None  # a person must look: why
    clear_flag: bool = False
    next_check: NextCheck = NextCheck.KEEP
    behind: bool = False  # the claim is behind the payment (late, stale or contradicting)
    resolved: bool = False  # a person confirmed the payment as it stands


def claim_for(status: Status) -> Claim:
    return Claim(status.value)


def target_of(claim: Claim | None, job: str) -> Status | None:
    if claim is None:
        return None
    if claim == Claim.SUCCEEDED:
        return Status.CAPTURED if job == "CAPTURE" else Status.AUTHORIZED
    return Status(claim.value)


def decide(facts: Facts, evidence: Evidence) -> Decision:
    """What `evidence` does to a payment that stands as `facts`. Pure: no I/O, no clock."""
    current = facts.status
    target = target_of(evidence.claim, facts.job)
    moves = target is not None and target != current and is_forward(current, target)
    behind = target is not None and target != current and not moves
    contradiction = behind and evidence.from_records
    flag = evidence.flag
    if contradiction:
        # Money moved where we think it did not (or the reverse): a person must look, and
        # nothing of the payment is changed meanwhile.
        shown = f" (gid {evidence.charge_id})" if evidence.charge_id else ""
        flag = flag or f"the gateway shows {target}{shown}, we have {current}"
        evidence = Evidence(source=evidence.source, claim=evidence.claim)
    operator = evidence.source == Source.OPERATOR
    return Decision(
        status=target if moves else None,
        charge_id=_fill(evidence.charge_id, facts.gid),
        order_number=_fill(evidence.order_number, facts.god),
        approval_code=_fill(evidence.approval_code, facts.ap),
        amounts=_amounts(facts, evidence, target, behind),
        content=_content(facts, evidence, target, behind),
        error=_error(facts, evidence, target, moves),
        clear_error=moves and _clears_error(current, target, evidence),
        flag=flag,
        clear_flag=operator,
        next_check=_next_check(current, target, moves, contradiction, evidence),
        behind=behind,
        resolved=operator and not moves,
    )


def _fill(stated: T | None, known: T | None) -> T | None:
    """A reference is filled in, never replaced."""
    return stated if stated and not known else None


def _clears_error(current: Status, target: Status | None, evidence: Evidence) -> bool:
    """A success (or cancel) the gateway reports for an open payment replaces the timeout
    or unreadable answer that left it open."""
    return (
        current in OPEN
        and target not in (Status.FAILED, Status.UNKNOWN, Status.PENDING)
        and evidence.error is None
        and evidence.source in _GATEWAY
    )


def _amounts(
    facts: Facts, evidence: Evidence, target: Status | None, behind: bool
) -> Amounts | None:
    stated = evidence.amounts
    if not facts.item_code or stated is None or facts.status not in OPEN or behind:
        return None
    if target is not None and target not in SUCCEEDED:
        return None  # a refusal's am=0 is no price: the merchant's figure stays
    return None if stated == facts.amounts else stated


def _content(
    facts: Facts, evidence: Evidence, target: Status | None, behind: bool
) -> Content | None:
    """Only a product payment's success issues contents; like a reference, filled in once."""
    stated = evidence.content
    if not facts.item_code or stated is None or facts.has_content or behind:
        return None
    return stated if target is None or target in SUCCEEDED else None


def _error(
    facts: Facts, evidence: Evidence, target: Status | None, moves: bool
) -> ErrorNote | None:
    if evidence.error is None or target is None:
        return None
    if moves or (target == facts.status and facts.error_code is None):
        return evidence.error
    return None  # stale, or the payment already has its reason: keep it


def _next_check(
    current: Status, target: Status | None, moves: bool, contradiction: bool, evidence: Evidence
) -> NextCheck:
    if moves:
        return NextCheck.SOON if target in OPEN else NextCheck.NONE
    if contradiction or evidence.source == Source.OPERATOR:
        return NextCheck.NONE
    if evidence.source == Source.ANSWER and target == current == Status.PENDING:
        return NextCheck.KICKBACK  # accepted for later (rt=0): look if no kickback comes
    return NextCheck.KEEP


# --- what a gateway answer says ----------------------------------------------------------


def our_failure(code: str, message: str) -> Evidence:
    """Our own verdict that a payment failed without a gateway answer saying so (it never
    left; its shopper never came back from 3-D Secure): the error the merchant sees."""
    return Evidence(source=Source.SYSTEM, claim=Claim.FAILED, error=ErrorNote(code, message))


def claim_of(outcome: Outcome, success: Claim = Claim.SUCCEEDED) -> Claim:
    """`success`: what a successful call means (a capture's answer means captured)."""
    match outcome:
        case Outcome.SUCCESS:
            return success
        case Outcome.DECLINED | Outcome.FAILED | Outcome.UNAVAILABLE:
            return Claim.FAILED  # definitively not charged
        case Outcome.PENDING | Outcome.REDIRECT:
            # REDIRECT: the shopper authenticates first (3-D Secure); nothing charged yet.
            return Claim.PENDING
        case _:
            return Claim.UNKNOWN  # may have been charged: never failed on this alone


def from_answer(result: ChargeResult, success: Claim = Claim.SUCCEEDED) -> Evidence:
    """What the gateway's answer to our charge (or capture, cancel, re-authorization) says."""
    amounts = None
    if result.amount is not None:
        amounts = Amounts(result.amount, result.tax or 0, result.shipping or 0)
    error = result.error
    return Evidence(
        source=Source.ANSWER,
        claim=claim_of(result.outcome, success),
        charge_id=result.charge_id or None,
        order_number=str(result.gateway_order_code) if result.gateway_order_code else None,
        approval_code=result.approval_code or None,
        amounts=amounts,
        content=Content.stated(result.issued_id, result.issued_password),
        error=ErrorNote(error.code, error.message_en) if error is not None else None,
    )


# --- what the charges search says --------------------------------------------------------

# How far around our row's creation the gateway's record of the same charge may lie: the
# charge is made after our row is committed (checkout) or just before it (a re-authorization
# whose answer was lost), within one gateway deadline (about 40 s); clocks drift a little.
MATCH_WINDOW = timedelta(minutes=10)


# A search row's neutral status (the provider reads its own codes into it, for ROBOT PAYMENT
# its search module's charge_status) as the payment status it proves.
_PROVES: dict[ChargeStatus, Status] = {
    ChargeStatus.AUTHORIZED: Status.AUTHORIZED,
    ChargeStatus.CAPTURED: Status.CAPTURED,
    ChargeStatus.CANCELED: Status.CANCELED,
    ChargeStatus.FAILED: Status.FAILED,
}


def status_of(record: ChargeRecord) -> Status | None:
    """The status a search row proves, or None while the gateway has not settled it."""
    return _PROVES.get(record.status)


# --- the entry point ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Applied:
    payment: Payment  # locked, with the decision written (not committed)
    decision: Decision
    before: Status

    @property
    def moved(self) -> bool:
        return self.decision.status is not None


async def apply(
    session: AsyncSession,
    payment_id: str,
    evidence: Evidence,
    *,
    actor: str,
    data: dict[str, Any] | None = None,
    reason: str | None = None,
    kickback_expected: timedelta = KICKBACK_EXPECTED,
) -> Applied:
    """Applies `evidence` to the payment under its row lock (taken here; the caller may
    already hold it). `data`/`reason` go on the status change's event. `kickback_expected`:
    when an rt=0 payment's kickback is late (KICKBACK_EXPECTED_SECONDS). The caller commits."""
    p = await lock_payment(session, payment_id)
    if p is None:
        raise LookupError(f"no payment {payment_id!r}")
    before = Status(p.status)
    d = decide(Facts.of(p), evidence)
    _write_fields(p, d)
    if d.status is not None:
        p.status = d.status
        observe_transition(before, d.status)
        add_event(
            session,
            p,
            "status_changed",
            from_status=before,
            to_status=d.status,
            actor=actor,
            reason=reason,
            data=data,
        )
    if d.next_check == NextCheck.SOON:
        p.next_check_at = utcnow() + FIRST_CHECK_DELAY
    elif d.next_check == NextCheck.KICKBACK:
        p.next_check_at = utcnow() + kickback_expected
    elif d.next_check == NextCheck.NONE:
        p.next_check_at = None
    if d.clear_flag:
        p.needs_attention = False
    if d.resolved:
        add_event(session, p, "resolved", to_status=p.status, actor=actor, reason=reason, data=data)
    if d.flag is not None:
        p.needs_attention = True
        add_event(session, p, "flagged", actor=actor, reason=d.flag, data=data)
        log.error("payment %s (%s) needs attention: %s", p.id, p.status, d.flag)
    if d.status in SUCCEEDED and before not in SUCCEEDED and p.checkout_session_id:
        await _complete_session(session, p.checkout_session_id, p.id)
    return Applied(p, d, before)


async def record_answer(
    session: AsyncSession,
    payment_id: str,
    result: ChargeResult,
    *,
    success: Claim = Claim.SUCCEEDED,
    actor: str = "gateway",
    kickback_expected: timedelta = KICKBACK_EXPECTED,
) -> Applied:
    """`apply` for the gateway's answer to our own call on `payment_id`."""
    return await apply(
        session,
        payment_id,
        from_answer(result, success),
        actor=actor,
        reason=result.error.message_en if result.error else None,
        data={"outcome": str(result.outcome), "gid": result.charge_id},
        kickback_expected=kickback_expected,
    )


def _write_fields(p: Payment, d: Decision) -> None:
    if d.charge_id is not None:
        p.gid = d.charge_id
    if d.order_number is not None:
        p.god = d.order_number
    if d.approval_code is not None:
        p.ap = d.approval_code
    if d.amounts is not None:
        p.amount, p.tax, p.shipping = d.amounts.amount, d.amounts.tax, d.amounts.shipping
    if d.content is not None:
        p.content_id, p.content_password = d.content.id, d.content.password
    if d.error is not None:
        p.error_code, p.error_message = d.error.code, d.error.message
    elif d.clear_error:
        p.error_code = p.error_message = None


async def _complete_session(session: AsyncSession, cs_id: str, payment_id: str) -> None:
    """The only place a checkout session is completed for its payment: under its row lock
    (taken after the payment's, the order every writer here uses)."""
    stmt = (
        select(CheckoutSession)
        .where(CheckoutSession.id == cs_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    cs = (await session.execute(stmt)).scalar_one_or_none()
    if cs is not None and cs.status != "completed":
        cs.status = "completed"
        outbox.emit(session, "checkout.session.completed", cs, extra={"payment_id": payment_id})
