"""Kickbacks: store raw first (database, or a durable local spool if the database is down),
then apply to payments: dedupe, match by our payment reference, then gid, then (one candidate
only) cod + amount, believe only what is trusted or confirmed by the charges search, never
move a payment backwards. The rules themselves are in rules.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from sqlalchemy import and_, delete, false, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import idempotency
from app.crash import crash_point
from app.db import utcnow
from app.gateway.base import (
    EventStatus,
    GatewayEvent,
    InvalidNotification,
    PaymentGateway,
    SearchError,
)
from app.kickbacks import rules
from app.kickbacks.limits import OverBudget, Verifier
from app.kickbacks.models import UNPROCESSED, Kickback
from app.metrics import KICKBACKS_REPLAYED
from app.payments import service as payments
from app.payments.evidence import (
    Amounts,
    Claim,
    Content,
    ErrorNote,
    Evidence,
    Source,
    claim_for,
)
from app.payments.evidence import apply as apply_evidence
from app.payments.models import Payment
from app.payments.states import Status

log = logging.getLogger(__name__)

# Larger requests are cut here (and the kickback is then 'invalid'). A real kickback is under
# 2 KiB: about 250 bytes of fields plus at most 1,024 bytes of free data, which percent-encoding
# can triple; 8 KiB holds that with room and keeps a junk flood 8 times cheaper than 64 KiB.
MAX_RAW = 8 * 1024
# When a kickback that waits for the charges search is asked again; then it is flagged.
DEFER_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(hours=1),
    timedelta(hours=6),
)
PURGE_BATCH = 1000


@dataclass(frozen=True)
class RawKickback:
    method: str
    source_ip: str | None
    raw_query: bytes
    raw_body: bytes
    content_type: str | None
    received_at: datetime
    spool_id: str | None = None
    trusted: bool = False  # arrived on the secret path from an allowed peer

    def to_json(self) -> str:
        return json.dumps(
            {
                "method": self.method,
                "source_ip": self.source_ip,
                "raw_query": base64.b64encode(self.raw_query).decode(),
                "raw_body": base64.b64encode(self.raw_body).decode(),
                "content_type": self.content_type,
                "received_at": self.received_at.isoformat(),
                "spool_id": self.spool_id,
                "trusted": self.trusted,
            }
        )

    @classmethod
    def from_json(cls, line: str) -> RawKickback:
        d = json.loads(line)
        return cls(
            method=d["method"],
            source_ip=d["source_ip"],
            raw_query=base64.b64decode(d["raw_query"]),
            raw_body=base64.b64decode(d["raw_body"]),
            content_type=d["content_type"],
            received_at=datetime.fromisoformat(d["received_at"]),
            spool_id=d["spool_id"],
            # Lines spooled before trust was recorded are untrusted: verified by the search.
            trusted=d.get("trusted") is True,
        )


async def store(sessions: async_sessionmaker[AsyncSession], raw: RawKickback) -> int:
    """One committed INSERT (Core, not the ORM unit of work: this is the hottest write)."""
    stmt = (
        insert(Kickback)
        .values(
            received_at=raw.received_at,
            source_ip=raw.source_ip,
            trusted=raw.trusted,
            method=raw.method,
            raw_query=raw.raw_query,
            raw_body=raw.raw_body,
            content_type=(raw.content_type or "")[:200] or None,
            status="received",
            spool_id=raw.spool_id,
            attempts=0,
        )
        .returning(Kickback.id)
    )
    async with sessions() as session:
        kickback_id = (await session.execute(stmt)).scalar_one()
        await session.commit()
        return int(kickback_id)


# --- the spool: a durable local file for when the database is down -------------------------


def spool(spool_dir: Path, raw: RawKickback) -> str:
    """Appends the kickback to a local file and fsyncs it before we answer 200."""
    spool_dir.mkdir(parents=True, exist_ok=True)
    spool_id = uuid.uuid4().hex
    line = RawKickback(**{**raw.__dict__, "spool_id": spool_id}).to_json() + "\n"
    path = spool_dir / f"kickbacks-{os.getpid()}.jsonl"
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        # A new file's name lives in its directory: without syncing that too, a power loss
        # can take the whole file (and every kickback in it) away.
        dir_fd = os.open(spool_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return spool_id


_replay_lock = asyncio.Lock()


def _claim_spool_files(spool_dir: Path) -> list[Path]:
    """Renames live spool files aside (writers then start a new file) and returns every
    claimed file, including leftovers of an earlier replay that failed midway."""
    if not spool_dir.exists():
        return []
    for path in spool_dir.glob("kickbacks-*.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            path.rename(path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.replaying"))
    return sorted(spool_dir.glob("kickbacks-*.replaying"))


async def replay_spool(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway | None,
    spool_dir: Path,
    *,
    verifier: Verifier | None = None,
    on_stored: Callable[[int], object] | None = None,
    cards: CardRegistrations | None = None,
) -> int:
    """Moves spooled kickbacks into the inbox (once each: spool_id is unique) and applies
    them (without a gateway, e.g. from the CLI, they stay 'received' for the server to
    apply); a file is deleted only after all its lines are stored."""
    done = 0
    async with _replay_lock:
        for claimed in await asyncio.to_thread(_claim_spool_files, spool_dir):
            text = await asyncio.to_thread(claimed.read_text)
            for line in text.splitlines():
                if not line.strip():
                    continue
                raw = RawKickback.from_json(line)
                async with sessions() as session:
                    exists = await session.scalar(
                        select(Kickback.id).where(Kickback.spool_id == raw.spool_id)
                    )
                kid = exists or await store(sessions, raw)
                if gateway is not None:
                    await apply(sessions, gateway, kid, verifier=verifier, cards=cards)
                done += 1
                if on_stored is not None:
                    on_stored(done)
            await asyncio.to_thread(claimed.unlink)
    return done


# --- applying ------------------------------------------------------------------------------


class CardRegistrations(Protocol):
    """What the layer above keeps when a settled charge also registered a stored card (an rt=0
    pay with registration: uid/key/num in the notice). Checkout implements it
    (app.checkout.kickback_cards); app.main wires it."""

    async def record(self, session: AsyncSession, payment_id: str, event: GatewayEvent) -> bool:
        """In the transaction that settles the payment (never commits): keep the customer's
        key and the card's number; False when the notice registers nothing we asked for."""
        ...

    async def refresh(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: PaymentGateway,
        payment_id: str,
        event: GatewayEvent,
    ) -> None:
        """After that commit: read the card back from the gateway (masked number, expiry)."""
        ...

    async def read_back(
        self, sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway
    ) -> int:
        """Cards kept whose read-back did not happen (a crash or a gateway error after the
        commit): read them now. Returns how many were read."""
        ...


@dataclass(frozen=True)
class _Read:
    """A stored kickback, read and matched (under its row lock)."""

    data: GatewayEvent
    trusted: bool

    @property
    def ref(self) -> str | None:
        return self.data.payment_ref


@dataclass(frozen=True)
class _Wait:
    """A kickback matched to its payment that needs the charges search (step 2)."""

    payment_id: str
    read: _Read
    expected: rules.Expected | None


async def apply(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    kickback_id: int,
    *,
    verifier: Verifier | None = None,
    cards: CardRegistrations | None = None,
) -> str:
    """Applies one stored kickback; returns its status then. Safe to run more than once and
    on several replicas at once. `verifier`: the process's search cache and budget; `cards`:
    who keeps a card the charge registered."""
    verifier = verifier or Verifier()
    # 1. Read, dedupe and match under the kickback's row lock; most end here.
    # Helpers below take the session and never commit: this function owns the transactions.
    async with sessions() as session:
        first = await _first_look(session, gateway, kickback_id, cards)
        await session.commit()  # what it finished, and the locks released before any search
    if isinstance(first, str):
        return first
    if isinstance(first, _Kept):
        await _refresh_card(sessions, gateway, cards, first.payment_id, first.data, kickback_id)
        return first.status

    # 2. The charges search, with no transaction open.
    verdict, why = await _verify(gateway, verifier, first)

    # 3. Record under both row locks, re-planning on what the rows say now.
    async with sessions() as session:
        status, registered = await _record(session, kickback_id, first, verdict, why, cards)
        await session.commit()
    if registered:
        await _refresh_card(
            sessions, gateway, cards, first.payment_id, first.read.data, kickback_id
        )
    return status


async def _refresh_card(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    cards: CardRegistrations | None,
    payment_id: str,
    data: GatewayEvent,
    kickback_id: int,
) -> None:
    if cards is None:
        return
    # A kill here leaves the card kept (key, number) but unread: read_back repairs it.
    crash_point("kickback.before_card_read")
    try:
        await cards.refresh(sessions, gateway, payment_id, data)
    except Exception:
        # Our copy has the key and number; the masked number comes with the next sync.
        log.exception("kickback %s: registered card not read back", kickback_id)


async def _keep_card(
    session: AsyncSession,
    cards: CardRegistrations | None,
    payment_id: str,
    data: GatewayEvent,
) -> bool:
    """A believed success notice that names a registered card: `cards` keeps it, once the
    payment stands succeeded (a charge that failed registered nothing)."""
    if cards is None or data.customer_key is None or data.status != EventStatus.SUCCEEDED:
        return False
    p = await session.get(Payment, payment_id)
    if p is None or Status(p.status) not in (Status.AUTHORIZED, Status.CAPTURED):
        return False
    return await cards.record(session, payment_id, data)


@dataclass(frozen=True)
class _Kept:
    """A kickback finished at the first look whose registered card was kept (to read back)."""

    status: str
    payment_id: str
    data: GatewayEvent


async def _first_look(
    session: AsyncSession,
    gateway: PaymentGateway,
    kickback_id: int,
    cards: CardRegistrations | None,
) -> str | _Wait | _Kept:
    """The kickback's status when it ends here (finished; the caller commits), else what to
    verify."""
    kb = await session.get(Kickback, kickback_id, with_for_update=True)
    if kb is None or kb.status not in UNPROCESSED:
        return kb.status if kb else "missing"
    if kb.status == "deferred" and kb.next_attempt_at and kb.next_attempt_at > utcnow():
        return kb.status  # another replica deferred it just now
    read, early = await _read(session, gateway, kb)
    if early is not None:
        return await _finish(session, kb, *early)
    assert read is not None
    payment, ambiguous = await _match(session, read, kb.received_at)
    if payment is None:
        if ambiguous:
            why = "several payments match its order id and amount"
            return await _finish(session, kb, "flagged", why)
        why = "no payment with this reference, gid or cod+amount"
        return await _finish(session, kb, "unmatched", why)
    kb.payment_id = payment.id
    # Copies delivered at the same moment all passed the first check; the payment's row lock
    # serializes them, so one is applied (even when it changes nothing) and the others are
    # duplicates. (lock_payment reads the row again under the lock: the match read it before.)
    payment = await payments.lock_payment(session, payment.id)
    assert payment is not None
    earlier = await _earlier_copy(session, kb)
    if earlier is not None:
        return await _finish(session, kb, "duplicate", f"same as kickback {earlier}")
    step = await _plan(session, payment, read, confirmed=False)
    if step.kind == "done":
        status = await _finish(session, kb, step.status, step.note)
        # E.g. the charges search settled the payment before its late kickback came: the
        # card it registered is known only from the notice, believed from a trusted source.
        if (
            status == "applied"
            and kb.trusted
            and await _keep_card(session, cards, payment.id, read.data)
        ):
            return _Kept(status, payment.id, read.data)
        return status
    expected = await _expected(session, payment, read) if step.kind == "search" else None
    return _Wait(payment.id, read, expected)


async def _expected(session: AsyncSession, payment: Payment, read: _Read) -> rules.Expected:
    """What the charges search must show for the kickback's claim about `payment`."""
    return rules.Expected(
        gid=read.data.charge_id or 0,
        cod=payment.cod,
        total=None if payment.item_code else payment.total,
        created_at=payment.created_at,
        success=read.data.status == EventStatus.SUCCEEDED,
    )


async def _verify(
    gateway: PaymentGateway, verifier: Verifier, wait: _Wait
) -> tuple[rules.Verdict | None, str]:
    """What the charges search says of the kickback's claim (None: it could not tell)."""
    if wait.expected is None:
        return None, ""
    try:
        rows = await verifier.rows(gateway, wait.expected.gid, trusted=wait.read.trusted)
        return rules.judge(wait.expected, rows)
    except OverBudget:
        return None, "the verification budget is spent for now"
    except SearchError as exc:
        return None, f"the charges search failed: {exc}"


async def _record(
    session: AsyncSession,
    kickback_id: int,
    wait: _Wait,
    verdict: rules.Verdict | None,
    why: str,
    cards: CardRegistrations | None,
) -> tuple[str, bool]:
    """The kickback's status, and whether `cards` kept a card its charge registered."""
    status = await _record_result(session, kickback_id, wait, verdict, why)
    if status != "applied":
        return status, False
    return status, await _keep_card(session, cards, wait.payment_id, wait.read.data)


async def _record_result(
    session: AsyncSession,
    kickback_id: int,
    wait: _Wait,
    verdict: rules.Verdict | None,
    why: str,
) -> str:
    kb = await session.get(Kickback, kickback_id, with_for_update=True)
    locked = await payments.lock_payment(session, wait.payment_id)
    assert kb is not None and locked is not None
    if kb.status not in UNPROCESSED:
        return kb.status
    # Copies delivered at the same moment all pass the first check; the payment's row lock
    # serializes them here, so exactly one is applied and the others are duplicates.
    earlier = await _earlier_copy(session, kb)
    if earlier is not None:
        return await _finish(session, kb, "duplicate", f"same as kickback {earlier}")
    if verdict is None and wait.expected is not None:
        return await _defer(session, kb, why)
    if verdict == rules.Verdict.UNSETTLED or (verdict == rules.Verdict.MISSING and kb.trusted):
        # Not yet visible or not settled at the gateway: ask again later, change nothing.
        return await _defer(session, kb, why)
    if verdict is not None and verdict != rules.Verdict.CONFIRMED:
        return await _finish(session, kb, "flagged", f"not confirmed: {why}")
    confirmed = verdict == rules.Verdict.CONFIRMED
    step = await _plan(session, locked, wait.read, confirmed=confirmed)
    if step.kind == "search":
        # The payment changed while we searched (e.g. its own answer was recorded).
        return await _defer(session, kb, "the payment changed meanwhile")
    if step.kind == "done":
        return await _finish(session, kb, step.status, step.note)
    if step.kind == "contradiction":
        await _contradiction(session, locked, kb, wait.read.data, confirmed=confirmed)
        return await _finish(session, kb, "flagged", f"contradiction: {step.note}")
    await _settle(session, locked, kb, wait.read.data, step.target, confirmed=confirmed)
    return await _finish(session, kb, "applied", step.note)


async def _read(
    session: AsyncSession, gateway: PaymentGateway, kb: Kickback
) -> tuple[_Read | None, tuple[str, str | None] | None]:
    """The kickback's content, or how it ends right away (invalid, duplicate)."""
    raw_query, raw_body = bytes(kb.raw_query), bytes(kb.raw_body)
    if len(raw_query) >= MAX_RAW or len(raw_body) >= MAX_RAW:
        return None, ("invalid", f"larger than {MAX_RAW} bytes: cut, so not a whole notice")
    try:
        data = gateway.parse_notification(raw_query, raw_body, kb.content_type)
    except InvalidNotification as exc:
        return None, ("invalid", str(exc))
    kb.gid = data.charge_id
    # The provider's hash of the result fields (for ROBOT PAYMENT the very material stored
    # before: gid|rst|ec|ap|am|tx|sf|ta|acid), so stored duplicates keep matching.
    kb.dedupe_key = data.dedupe_key
    earlier = await _earlier_copy(session, kb)
    if earlier is not None:
        return None, ("duplicate", f"same as kickback {earlier}")
    return _Read(data, kb.trusted), None


async def _match(
    session: AsyncSession, read: _Read, received_at: datetime
) -> tuple[Payment | None, bool]:
    """(payment, ambiguous): by our payment reference, then by gid, then by cod + total when
    exactly one payment can be meant."""
    if read.ref is not None and len(read.ref) <= 40:
        by_ref = await session.get(Payment, read.ref)
        if by_ref is not None:
            return by_ref, False
    data = read.data
    if data.charge_id:
        by_gid = await session.scalar(select(Payment).where(Payment.gid == data.charge_id))
        if by_gid is not None:
            return by_gid, False
    if not data.order_ref or data.total is None:
        return None, False
    # The seed's own sample sends `cod=test ` with a trailing space: compare trimmed.
    cod = data.order_ref.strip()
    total = Payment.amount + Payment.tax + Payment.shipping
    candidates = list(
        (
            await session.execute(
                select(Payment)
                .where(
                    Payment.cod == cod,
                    or_(Payment.gid.is_(None), Payment.gid == data.charge_id),
                    or_(Payment.item_code.is_not(None), total == data.total),
                    Payment.created_at < received_at,
                )
                .limit(2)
            )
        ).scalars()
    )
    # Failed and canceled attempts count too: a late decline of a failed first attempt must
    # not land on the pending retry of the same order (both share cod and total).
    if len(candidates) == 1:
        return candidates[0], False
    return None, len(candidates) > 1


def _facts(p: Payment) -> rules.Facts:
    return rules.Facts(
        status=Status(p.status),
        gid=p.gid,
        job=p.job,
        amount=p.amount,
        tax=p.tax,
        shipping=p.shipping,
        item_code=p.item_code,
    )


async def _plan(session: AsyncSession, p: Payment, read: _Read, *, confirmed: bool) -> rules.Plan:
    gid = read.data.charge_id
    if gid is not None and p.gid != gid:
        owner = await session.scalar(
            select(Payment.id).where(Payment.gid == gid, Payment.id != p.id)
        )
        if owner is not None:
            return rules.Plan("done", "flagged", f"gid {gid} belongs to payment {owner}")
    return rules.plan(_facts(p), read.data, trusted=read.trusted, confirmed=confirmed)


def _evidence(
    data: GatewayEvent, target: Status | None, *, trusted: bool, confirmed: bool
) -> Evidence:
    """What a kickback says, as payments.evidence reads it."""
    amounts = (
        Amounts(data.amount, data.tax or 0, data.shipping or 0) if data.amount is not None else None
    )
    error = None
    if target == Status.FAILED and data.error is not None:
        error = ErrorNote(data.error.code, data.error.message_en)
    return Evidence(
        source=Source.NOTIFICATION,
        claim=claim_for(target) if target is not None else None,
        charge_id=data.charge_id,
        order_number=data.gateway_order_code,
        approval_code=data.approval_code,
        amounts=amounts,
        content=Content.stated(data.issued_id, data.issued_password),
        error=error,
        trusted=trusted,
        confirmed=confirmed,
    )


async def _settle(
    session: AsyncSession,
    p: Payment,
    kb: Kickback,
    data: GatewayEvent,
    target: Status | None,
    *,
    confirmed: bool,
) -> None:
    """The kickback is the result: it replaces whatever a lost or garbled answer left (a
    decline must not read "timeout"); payments.evidence decides what it changes."""
    await apply_evidence(
        session,
        p.id,
        _evidence(data, target, trusted=kb.trusted, confirmed=confirmed),
        actor="kickback",
        data={"kickback_id": kb.id, "gid": data.charge_id, "trusted": kb.trusted},
    )


async def _contradiction(
    session: AsyncSession, p: Payment, kb: Kickback, data: GatewayEvent, *, confirmed: bool
) -> None:
    """Money moved where we think it did not: a person must look (nothing is changed)."""
    claimed = Evidence(
        source=Source.NOTIFICATION,
        claim=Claim.SUCCEEDED,
        charge_id=data.charge_id,
        trusted=kb.trusted,
        confirmed=confirmed,
    )
    # rules.plan saw a believable success on a failed or canceled payment: evidence.apply
    # flags it (a claim behind the payment, from the gateway's records or a trusted peer).
    await apply_evidence(
        session, p.id, claimed, actor="kickback", data={"kickback_id": kb.id, "gid": data.charge_id}
    )


async def _earlier_copy(session: AsyncSession, kb: Kickback) -> int | None:
    """Another kickback with the same result fields that was already applied."""
    earlier: int | None = await session.scalar(
        select(Kickback.id)
        .where(
            Kickback.dedupe_key == kb.dedupe_key,
            Kickback.id != kb.id,
            Kickback.status.in_(("applied", "duplicate")),
        )
        .order_by(Kickback.id)
        .limit(1)
    )
    return earlier


async def _defer(session: AsyncSession, kb: Kickback, why: str) -> str:
    """Keeps the kickback for a later try; after the last one it is flagged."""
    if kb.attempts >= len(DEFER_SCHEDULE):
        return await _finish(
            session, kb, "flagged", f"not confirmed after {kb.attempts + 1} tries: {why}"
        )
    kb.next_attempt_at = utcnow() + DEFER_SCHEDULE[kb.attempts]
    kb.attempts += 1
    kb.status = "deferred"
    kb.note = why[:500]
    log.info("kickback %s deferred (try %d): %s", kb.id, kb.attempts, why)
    return "deferred"


async def _finish(session: AsyncSession, kb: Kickback, status: str, note: str | None) -> str:
    kb.status = status
    kb.note = note[:500] if note else None
    kb.processed_at = utcnow()
    kb.next_attempt_at = None
    if status in ("unmatched", "flagged", "invalid"):
        log.warning("kickback %s %s: %s", kb.id, status, note)
    return status


async def retry_stuck(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    *,
    verifier: Verifier | None = None,
    older_than: float = 30.0,
    cards: CardRegistrations | None = None,
) -> int:
    """Applies kickbacks that were stored but not applied (a crash or error in between) and
    deferred ones that are due."""
    now = utcnow()
    cutoff = now - timedelta(seconds=older_than)
    async with sessions() as session:
        ids = list(
            (
                await session.execute(
                    select(Kickback.id)
                    .where(
                        or_(
                            and_(
                                Kickback.status.in_(("received", "error")),
                                Kickback.received_at < cutoff,
                            ),
                            and_(Kickback.status == "deferred", Kickback.next_attempt_at <= now),
                        )
                    )
                    .order_by(Kickback.id)
                    .limit(500)
                )
            ).scalars()
        )
    for kid in ids:
        try:
            await apply(sessions, gateway, kid, verifier=verifier, cards=cards)
        except Exception:
            log.exception("kickback %s could not be applied", kid)
    return len(ids)


# --- retention -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Retention:
    days: int = 180  # processed kickbacks
    junk_days: int = 7  # unreadable, or untrusted and unmatched/flagged


async def purge(
    sessions: async_sessionmaker[AsyncSession],
    retention: Retention,
    *,
    now: datetime | None = None,
    batch: int = PURGE_BATCH,
    max_batches: int = 10,
) -> int:
    """Deletes processed kickbacks past their retention, `batch` rows per transaction (at
    most `max_batches` a call: the rest go next time). Unprocessed ones are never deleted."""
    now = now or utcnow()
    junk = or_(
        Kickback.status == "invalid",
        and_(Kickback.trusted == false(), Kickback.status.in_(("unmatched", "flagged"))),
    )
    expired = and_(
        Kickback.status.not_in(UNPROCESSED),
        or_(
            Kickback.received_at < now - timedelta(days=retention.days),
            and_(junk, Kickback.received_at < now - timedelta(days=retention.junk_days)),
        ),
    )
    deleted = 0
    for _ in range(max_batches):
        async with sessions() as session:
            ids = select(Kickback.id).where(expired).order_by(Kickback.id).limit(batch)
            result = await session.execute(delete(Kickback).where(Kickback.id.in_(ids)))
            await session.commit()
        count = int(getattr(result, "rowcount", 0) or 0)
        deleted += count
        if count < batch:
            break
    if deleted:
        log.info("kickback retention: %d old kickbacks deleted", deleted)
    return deleted


async def background_loop(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    spool_dir: Path,
    *,
    verifier: Verifier | None = None,
    retention: Retention | None = None,
    cards: CardRegistrations | None = None,
    interval: float = 5.0,
    purge_every: float = 600.0,
) -> None:
    """Replays the spool once the database is back, retries stuck and due deferred
    kickbacks, reads back registered cards left unread, and (every `purge_every` seconds)
    deletes old ones and expired Idempotency-Keys, forever."""
    retention = retention or Retention()
    last_purge = 0.0
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            replayed = await replay_spool(
                sessions, gateway, spool_dir, verifier=verifier, cards=cards
            )
            if replayed:
                KICKBACKS_REPLAYED.inc(replayed)
                log.info("kickback spool: %d replayed into the inbox", replayed)
            await retry_stuck(sessions, gateway, verifier=verifier, cards=cards)
            if cards is not None:
                await cards.read_back(sessions, gateway)
            if loop.time() - last_purge >= purge_every:
                last_purge = loop.time()
                await purge(sessions, retention)
                # Housekeeping every replica may do: expired Idempotency-Keys, in batches.
                await idempotency.purge_expired(sessions)
        except Exception as exc:  # the database may still be down: try again next round
            log.warning("kickback replay deferred: %s", exc)
