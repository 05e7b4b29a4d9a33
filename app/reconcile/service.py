"""The janitor: settles `unknown` and stale `pending` payments (and payments whose last
operation went unanswered) from the gateway's charges search.

Safe with any number of replicas: (1) a short transaction takes due rows with
`FOR UPDATE SKIP LOCKED` and pushes their `next_check_at` forward as a lease, then commits;
(2) the search API is asked with no lock held; (3) each answer is recorded under the row lock,
only if the row still carries our lease (a fencing token), so no payment is settled twice.

Re-checks back off on a bounded schedule (1 min, 5 min, 1 h, 1 day); after that the payment is
flagged (`needs_attention`) and logged at ERROR so a person is told. A pending payment whose pay
stopped before sending (no "about to send" mark once its claim expired) is failed at once.

`check_payment` is the same judgement for one payment, on demand (a retry of the Idempotency-Key
that created it), without counting as one of the scheduled checks.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db import utcnow
from app.gateway.base import ChargeRecord, PaymentGateway, SearchError
from app.metrics import RECONCILE_RESULTS
from app.payments import service as payments
from app.payments import three_ds
from app.payments.evidence import Amounts, Claim, ErrorNote, Evidence, Source, claim_for
from app.payments.evidence import apply as apply_evidence
from app.payments.models import Payment
from app.payments.operations import running_until
from app.payments.states import Status
from app.reconcile.matching import Wanted, find, search_range, status_of

log = logging.getLogger(__name__)

# Delay before check n+1 (the first is set when a payment becomes unknown/pending).
SCHEDULE: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(hours=1),
    timedelta(days=1),
)
# Longer than one payment's search takes; a janitor that dies just lets the lease run out.
LEASE = timedelta(minutes=2)
# One batch search covers payments created within this span (the API's 7-day window).
CLUSTER_SPAN = timedelta(days=7)
# A pending payment older than this without a scheduled check was left behind (a crash
# between our commit and the gateway call, or a lost kickback): longer than a gateway call.
STALE_PENDING = timedelta(minutes=2)
# A payment without gid that the gateway has no record of this long after we created it never
# became a charge: the request was sent once, never again, and long since finished (a token
# also expires after 15 minutes), and the search lists every payment, declined ones too.
NO_RECORD_FAIL_AFTER = timedelta(hours=1)

OPEN = (Status.PENDING, Status.UNKNOWN)
CHECKABLE = (Status.PENDING, Status.UNKNOWN, Status.AUTHORIZED, Status.CAPTURED)
ACTOR = "reconciler"

Result = Literal["settled", "confirmed", "rescheduled", "flagged", "skipped", "error"]


@dataclass(frozen=True)
class PaymentCheck:
    payment_id: str
    result: Result
    from_status: str
    to_status: str
    note: str | None = None


@dataclass
class ReconcileSummary:
    checked: int = 0
    settled: int = 0
    confirmed: int = 0
    rescheduled: int = 0
    flagged: int = 0
    skipped: int = 0
    errors: int = 0
    results: list[PaymentCheck] = field(default_factory=list)

    def add(self, check: PaymentCheck) -> None:
        self.results.append(check)
        self.checked += 1
        setattr(self, _COUNTER[check.result], getattr(self, _COUNTER[check.result]) + 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


_COUNTER: dict[Result, str] = {
    "settled": "settled",
    "confirmed": "confirmed",
    "rescheduled": "rescheduled",
    "flagged": "flagged",
    "skipped": "skipped",
    "error": "errors",
}


@dataclass(frozen=True)
class _Lease:
    payment_id: str
    until: datetime  # the fencing token: our value of next_check_at
    gid: int | None
    created_at: datetime
    status: str
    prior_check: datetime | None = None  # next_check_at before the lease


def _scheduled_by(now: datetime) -> Any:
    """A scheduled check that is due at `now` (what a pass leases, and what wakes it early)."""
    return and_(Payment.status.in_(CHECKABLE), Payment.next_check_at <= now)


def _due(now: datetime, all_open: bool, pay_claim: timedelta) -> Any:
    scheduled = and_(Payment.next_check_at.is_not(None), Payment.status.in_(CHECKABLE))
    if all_open:
        return or_(Payment.status.in_(OPEN), scheduled)
    return or_(
        _scheduled_by(now),
        and_(
            Payment.status == Status.PENDING,
            Payment.next_check_at.is_(None),
            Payment.needs_attention.is_(False),
            or_(
                Payment.created_at <= now - STALE_PENDING,
                # Claimed and never marked "about to send": failed as soon as its claim ends.
                and_(Payment.unsent.is_(True), Payment.created_at <= now - pay_claim),
            ),
        ),
    )


async def _lease(
    sessions: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    limit: int,
    all_open: bool,
    pay_claim: timedelta,
    only: str | None = None,
) -> list[_Lease]:
    async with sessions() as session:
        due = _due(now, all_open, pay_claim)
        if only is not None:
            due = and_(Payment.id == only, Payment.status.in_(OPEN))
        stmt = (
            select(Payment)
            .where(due)
            .order_by(Payment.created_at, Payment.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = list((await session.execute(stmt)).scalars())
        leases = []
        for p in rows:
            prior = p.next_check_at
            # Random microseconds make each lease value unique to this janitor.
            p.next_check_at = now + LEASE + timedelta(microseconds=secrets.randbelow(10**6))
            leases.append(_Lease(p.id, p.next_check_at, p.gid, p.created_at, p.status, prior))
        await session.commit()
        return leases


def clusters(leases: Sequence[_Lease]) -> list[list[_Lease]]:
    """Leases grouped so that each group's search range (creation times ± the match window)
    fits one 7-day search window: one search per group instead of one per payment."""
    groups: list[list[_Lease]] = []
    start: datetime | None = None
    for lease in sorted(leases, key=lambda x: x.created_at):
        lo, _ = search_range(lease.created_at)
        if start is None or search_range(lease.created_at)[1] - start > CLUSTER_SPAN:
            groups.append([])
            start = lo
        groups[-1].append(lease)
    return groups


async def _search_cluster(
    gateway: PaymentGateway, cluster: Sequence[_Lease]
) -> list[ChargeRecord] | None:
    lo = search_range(cluster[0].created_at)[0]
    hi = search_range(cluster[-1].created_at)[1]
    try:
        return await gateway.search_charges(created_from=lo, created_to=hi)
    except SearchError as exc:
        log.warning("reconcile: charges search %s..%s failed: %s", lo, hi, exc)
        return None


def _searches_by_time(gateway: PaymentGateway) -> bool:
    """Whether the gateway finds charges by their time (ROBOT PAYMENT) or only by their id
    (SBPS: its lookup needs the tracking id)."""
    return gateway.charge_search_limits.max_range > timedelta(0)


# Why a payment without a charge id on a gateway without a search goes to a person at once:
# asking again can never find it (docs/gateway.md, SBPS).
NO_SEARCH = (
    "the gateway cannot look up a charge without its id, and this payment has none: find its "
    "order id in the gateway's console and resolve it by hand"
)


async def _search(gateway: PaymentGateway, lease: _Lease) -> list[ChargeRecord] | None:
    """The gateway's rows for this payment (by gid, else around its creation); None when
    the search failed (read-only: it is simply asked again next time)."""
    try:
        if lease.gid is not None:
            return await gateway.search_charges(charge_id=lease.gid)
        lo, hi = search_range(lease.created_at)
        return await gateway.search_charges(created_from=lo, created_to=hi)
    except SearchError as exc:
        log.warning("reconcile %s: charges search failed: %s", lease.payment_id, exc)
        return None


def _flag(session: AsyncSession, p: Payment, reason: str) -> None:
    p.needs_attention = True
    p.next_check_at = None
    payments.add_event(session, p, "flagged", actor=ACTOR, reason=reason)
    log.error("payment %s (%s) needs attention: %s", p.id, p.status, reason)


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    lease: _Lease,
    rows: Sequence[ChargeRecord] | None,
    now: datetime,
    pay_claim: timedelta,
    *,
    on_demand: bool = False,
    searchable: bool = True,
) -> PaymentCheck:
    async with sessions() as session:
        p = await payments.lock_payment(session, lease.payment_id)
        if p is None or p.next_check_at != lease.until:
            # Someone else (another janitor whose lease came later, a kickback, a person)
            # has dealt with it since we leased it.
            return PaymentCheck(lease.payment_id, "skipped", lease.status, p.status if p else "")
        before = p.status
        if not on_demand:
            p.check_attempts += 1
        result, note = await _judge(
            session, p, rows, now, pay_claim, on_demand=on_demand, searchable=searchable
        )
        if on_demand and result == "rescheduled":
            # Nothing learned: the janitor's own schedule goes on as it was.
            p.next_check_at = lease.prior_check
        await session.commit()
        return PaymentCheck(p.id, result, before, p.status, note)


_SUCCESS = (Status.AUTHORIZED, Status.CAPTURED, Status.CANCELED)


async def _judge(
    session: AsyncSession,
    p: Payment,
    rows: Sequence[ChargeRecord] | None,
    now: datetime,
    pay_claim: timedelta,
    *,
    on_demand: bool = False,
    searchable: bool = True,
) -> tuple[Result, str | None]:
    if payments.never_sent(p, claim=pay_claim, now=now):
        await payments.fail_if_never_sent(session, p, claim=pay_claim, actor=ACTOR, now=now)
        return "settled", "never sent"
    # Waiting for its shopper at 3-D Secure: nothing charged unless we authorize it, and
    # failed (under the same fence as the return) once the window has passed.
    waiting = await three_ds.expire_if_abandoned(session, p, now=now, actor=ACTOR)
    if waiting is not None:
        return ("settled", "3-D Secure abandoned") if waiting else ("rescheduled", "at 3-D Secure")
    if not searchable:
        if not p.needs_attention:
            _flag(session, p, NO_SEARCH)
        return "flagged", NO_SEARCH
    if rows is None:
        return _reschedule(session, p, now, "the charges search failed", on_demand=on_demand)
    found = await _from_search(session, p, rows, now)
    if isinstance(found, str):
        return _reschedule(session, p, now, found, on_demand=on_demand)
    return found


async def _from_search(
    session: AsyncSession, p: Payment, rows: Sequence[ChargeRecord], now: datetime
) -> tuple[Result, str | None] | str:
    """What the search rows do to `p` (locked): a result, or (nothing learned) why not."""
    cod = p.cod
    # A batch search returns every charge of the window: keep the ones that can be ours.
    rows = [r for r in rows if r.charge_id == p.gid or (r.order_ref or "").strip() == cod]
    owners = await _owners(session, p, rows)
    wanted = Wanted(
        gid=p.gid,
        cod=cod,
        total=None if p.item_code else p.total,
        created_at=p.created_at,
        exclude_gids=frozenset(owners),
    )
    match = find(wanted, rows)
    if match.ambiguous:
        _flag(session, p, "several gateway payments match its order id and amount")
        return "flagged", "ambiguous"
    record = match.record
    target = status_of(record) if record is not None else None
    if record is not None and target is not None:
        return await _apply(session, p, record, target)
    if record is not None:
        return f"the gateway has not settled gid {record.charge_id} yet (rst={record.result_code})"
    if p.gid is None and Status(p.status) in OPEN and now - p.created_at >= NO_RECORD_FAIL_AFTER:
        return await _absent(session, p, rows, owners, wanted)
    return "no matching payment at the gateway yet"


async def _owners(
    session: AsyncSession, p: Payment, rows: Sequence[ChargeRecord]
) -> dict[int, str]:
    """The rows' gids that other payments of ours hold, with those payments' ids."""
    held = await session.execute(
        select(Payment.gid, Payment.id).where(
            Payment.gid.in_([r.charge_id for r in rows]), Payment.id != p.id
        )
    )
    return {gid: pid for gid, pid in held.all() if gid is not None}


async def _absent(
    session: AsyncSession,
    p: Payment,
    rows: Sequence[ChargeRecord],
    owners: dict[int, str],
    wanted: Wanted,
) -> tuple[Result, str | None]:
    """No charge of the gateway's is this payment's, long after it was requested."""
    # A charge that matches it but that another payment holds is no proof of absence:
    # one of the two rows is wrong, and only a person can tell which.
    held = find(
        Wanted(gid=None, cod=wanted.cod, total=wanted.total, created_at=p.created_at),
        [r for r in rows if r.charge_id in owners and status_of(r) in _SUCCESS],
    )
    if held.record is not None or held.ambiguous:
        gid = held.record.charge_id if held.record is not None else None
        _flag(
            session,
            p,
            "the gateway's charge that matches it by order id, amount and time "
            + (f"(gid {gid}) is held by payment {owners[gid]}" if gid else "is held by others")
            + ": not failed",
        )
        return "flagged", "its matching charge is held by another payment"
    await apply_evidence(
        session,
        p.id,
        Evidence(source=Source.SEARCH, claim=Claim.FAILED),
        actor=ACTOR,
        reason="the gateway has no record of this charge "
        f"{NO_RECORD_FAIL_AFTER} after it was requested",
        data={"source": "search", "attempt": p.check_attempts},
    )
    return "settled", "no charge at the gateway"


def _reschedule(
    session: AsyncSession, p: Payment, now: datetime, note: str, *, on_demand: bool
) -> tuple[Result, str | None]:
    if on_demand:
        return "rescheduled", note  # the caller keeps the janitor's schedule as it was
    if p.check_attempts < len(SCHEDULE):
        p.next_check_at = now + SCHEDULE[p.check_attempts]
        return "rescheduled", note
    _flag(session, p, f"still not settled after {p.check_attempts} checks: {note}")
    return "flagged", note


def evidence_of(record: ChargeRecord, target: Status) -> Evidence:
    """What a charges-search row says, as payments.evidence reads it."""
    error = None
    if target == Status.FAILED and record.error is not None:
        error = ErrorNote(record.error.code, record.error.message_en)
    amounts = (
        Amounts(record.amount, record.tax or 0, record.shipping or 0)
        if record.amount is not None
        else None
    )
    return Evidence(
        source=Source.SEARCH,
        claim=claim_for(target),
        charge_id=record.charge_id,
        amounts=amounts,
        error=error,
        confirmed=True,
    )


async def _apply(
    session: AsyncSession, p: Payment, record: ChargeRecord, target: Status
) -> tuple[Result, str | None]:
    data = {
        "source": "search",
        "gid": record.charge_id,
        "jb": record.job,
        "rst": record.result_code,
    }
    applied = await apply_evidence(
        session, p.id, evidence_of(record, target), actor=ACTOR, reason="charges search", data=data
    )
    if applied.moved:
        return "settled", None
    if applied.decision.flag is not None:
        return "flagged", "contradiction"
    # The gateway shows what we have. An operation still in flight may change it yet: look
    # again when its lease ends.
    p.next_check_at = await running_until(session, p.id)
    payments.add_event(session, p, "reconciled", to_status=p.status, actor=ACTOR, data=data)
    return "confirmed", f"the gateway shows {target}"


async def reconcile_due(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    *,
    now: datetime | None = None,
    limit: int = 100,
    all_open: bool = False,
    on_check: Callable[[PaymentCheck], None] | None = None,
    on_leased: Callable[[int], None] | None = None,
    pay_claim: timedelta = payments.PAY_CLAIM,
    summary: ReconcileSummary | None = None,
) -> ReconcileSummary:
    """One pass. `all_open` checks every unknown/pending (and scheduled) payment now,
    not only those that are due (what ops ask for by hand). `pay_claim`: PAY_CLAIM_SECONDS.
    `on_leased` hears how many payments the pass took, `on_check` each one's result once
    `summary` (a new one when not given; a recorded pass's progress) counts it."""
    now = now or utcnow()
    summary = summary if summary is not None else ReconcileSummary()
    leases = await _lease(sessions, now=now, limit=limit, all_open=all_open, pay_claim=pay_claim)
    if on_leased is not None:
        on_leased(len(leases))
    by_time = _searches_by_time(gateway)
    for cluster in clusters(leases):
        found = await _search_cluster(gateway, cluster) if by_time else None
        for lease in cluster:
            try:
                rows = found
                if lease.gid is not None and (
                    found is None or all(r.charge_id != lease.gid for r in found)
                ):
                    rows = await _search(gateway, lease)  # an old gid outside the window
                searchable = by_time or lease.gid is not None
                check = await _record(sessions, lease, rows, now, pay_claim, searchable=searchable)
            except Exception as exc:
                log.exception("reconcile %s failed", lease.payment_id)
                check = PaymentCheck(
                    lease.payment_id, "error", lease.status, lease.status, str(exc)
                )
            summary.add(check)
            RECONCILE_RESULTS.labels(check.result).inc()
            if on_check is not None:
                on_check(check)
    if summary.checked:
        log.info(
            "reconciliation: %d checked, %d settled, %d confirmed, %d rescheduled, "
            "%d flagged, %d skipped, %d errors",
            summary.checked,
            summary.settled,
            summary.confirmed,
            summary.rescheduled,
            summary.flagged,
            summary.skipped,
            summary.errors,
        )
    return summary


async def check_payment(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    payment_id: str,
    *,
    pay_claim: timedelta = payments.PAY_CLAIM,
    now: datetime | None = None,
) -> PaymentCheck | None:
    """One look at the charges search for one pending or unknown payment, now: the janitor's
    judgement (settled, failed as never sent, flagged...), not counted as one of its scheduled
    checks. None when the payment is not open, or a janitor holds it at this moment."""
    now = now or utcnow()
    leases = await _lease(
        sessions, now=now, limit=1, all_open=True, pay_claim=pay_claim, only=payment_id
    )
    if not leases:
        return None
    searchable = _searches_by_time(gateway) or leases[0].gid is not None
    rows = await _search(gateway, leases[0]) if searchable else None
    check = await _record(
        sessions, leases[0], rows, now, pay_claim, on_demand=True, searchable=searchable
    )
    RECONCILE_RESULTS.labels(check.result).inc()
    return check


async def settled(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    payment_id: str,
    *,
    pay_claim: timedelta = payments.PAY_CLAIM,
) -> Payment | None:
    """The payment after `check_payment` (if it was pending or unknown); None if there is no
    such payment."""
    await check_payment(sessions, gateway, payment_id, pay_claim=pay_claim)
    async with sessions() as session:
        return await session.get(Payment, payment_id)


# How often the janitor looks at the schedule between passes (one indexed query).
PEEK = 5.0


async def check_due(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Whether a scheduled check is due now (leased rows are scheduled LEASE ahead). A
    database that does not answer is left to the next pass to report."""
    try:
        async with sessions() as session:
            due = await session.scalar(select(Payment.id).where(_scheduled_by(utcnow())).limit(1))
    except Exception:
        return False
    return due is not None
