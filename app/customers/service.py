"""Customers and cards: the gateway is the source of truth, our tables are a faithful copy.

Each operation reads what it needs and closes its transaction, calls the gateway, then writes
the answer under the customer's row lock together with an audit event (customer_events). When
the gateway acted but our write failed (or its answer was lost), `sync` repairs the copy: it
re-reads the user (cmd 3) and every card (cmd 6), and probes past the highest known card
number, since the gateway numbers a customer's cards in order and never reuses a number.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.customers.models import Card, Customer, CustomerEvent
from app.db import utcnow
from app.errors import (
    Conflict,
    FieldError,
    GatewayFailure,
    NotFound,
    PaymentDeclined,
    ServiceUnavailable,
    Unprocessable,
    problem_for,
)
from app.gateway.base import CardResult, ErrorKind, Outcome, PaymentGateway, UserResult
from app.idempotency import bind

log = logging.getLogger(__name__)

# Error kinds that say "this user/card is gone at the gateway".
USER_GONE = frozenset({ErrorKind.CUSTOMER_UNKNOWN, ErrorKind.CUSTOMER_DELETED})
CARD_GONE = frozenset({ErrorKind.CARD_UNKNOWN})
# The token, or the 3-D Secure run on it: the card must be entered again.
_TOKEN_KINDS = frozenset({ErrorKind.TOKEN_INVALID, ErrorKind.THREE_DS_FAILED})
# The gateway statuses with their own problem class here (others: 502 gateway-error).
_CUSTOMER_PROBLEMS = frozenset({402, 409, 422, 503})
# How many card numbers past the highest known one a sync looks at (stops at the first gap).
MAX_PROBES = 20


def add_event(
    session: AsyncSession,
    uid: str,
    type_: str,
    *,
    actor: str | None,
    card_num: int | None = None,
    data: dict[str, Any] | None = None,
) -> CustomerEvent:
    event = CustomerEvent(customer_uid=uid, card_num=card_num, type=type_, actor=actor, data=data)
    session.add(event)
    return event


def error_code(result: UserResult | CardResult) -> str | None:
    """The gateway's raw code, for events and problems only: decisions use error_kind."""
    return result.error.code if result.error is not None else None


def error_kind(result: UserResult | CardResult) -> ErrorKind | None:
    return result.error.kind if result.error is not None else None


def raise_for(result: UserResult | CardResult, *, uid: str, num: int | None = None) -> None:
    """Nothing on success; otherwise the problem the caller should answer with."""
    if result.outcome == Outcome.SUCCESS:
        return
    info = result.error
    extra = {"gateway_code": info.code if info else None}
    if result.outcome == Outcome.UNKNOWN or info is None:
        raise GatewayFailure(
            "The gateway's answer could not be read; it may have acted. "
            f"POST /v1/customers/{uid}/sync brings our copy up to date.",
            code=info.stable_code if info else "gateway_unknown",
            extra=extra,
        )
    if result.outcome == Outcome.UNAVAILABLE:
        raise ServiceUnavailable(info.message_en, code=info.stable_code, extra=extra)
    if info.kind == ErrorKind.CUSTOMER_UNKNOWN:
        raise NotFound(f"No customer {uid!r} at the gateway.", code=info.stable_code, extra=extra)
    if info.kind == ErrorKind.CARD_UNKNOWN:
        raise NotFound(f"No card {num} for customer {uid!r}.", code=info.stable_code, extra=extra)
    if info.kind in _TOKEN_KINDS:
        if result.outcome == Outcome.DECLINED:
            raise PaymentDeclined(info.message_en, code=info.stable_code, extra=extra)
        raise Unprocessable(
            info.message_en,
            code=info.stable_code,
            errors=[FieldError(field="token", message=info.message_en)],
            extra=extra,
        )
    raise problem_for(info, statuses=_CUSTOMER_PROBLEMS)


# --- reads of our copy ---------------------------------------------------------------------


async def lock_customer(session: AsyncSession, uid: str) -> Customer | None:
    stmt = select(Customer).where(Customer.uid == uid).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def find_card(session: AsyncSession, uid: str, num: int) -> Card | None:
    stmt = select(Card).where(Card.customer_uid == uid, Card.num == num)
    return (await session.execute(stmt)).scalar_one_or_none()


async def cards_of(session: AsyncSession, uid: str, *, active_only: bool = True) -> list[Card]:
    stmt = select(Card).where(Card.customer_uid == uid)
    if active_only:
        stmt = stmt.where(Card.status == "active")
    return list((await session.execute(stmt.order_by(Card.num))).scalars())


async def events_of(session: AsyncSession, uid: str, limit: int = 100) -> list[CustomerEvent]:
    stmt = (
        select(CustomerEvent)
        .where(CustomerEvent.customer_uid == uid)
        .order_by(CustomerEvent.id.desc())
        .limit(limit)
    )
    return list(reversed(list((await session.execute(stmt)).scalars())))


def _not_found(uid: str) -> NotFound:
    return NotFound(
        f"No customer {uid!r}. If it exists at the gateway, POST /v1/customers/{uid}/sync "
        "imports it.",
        code="customer_not_found",
    )


async def existing_customer(session: AsyncSession, uid: str, *, fresh: bool = False) -> Customer:
    """Our copy of the customer (any status), read again from the database when `fresh`;
    a 404 when we have none."""
    customer = await session.get(Customer, uid)
    if customer is None:
        raise NotFound(f"No customer {uid!r}.", code="customer_not_found")
    if fresh:
        await session.refresh(customer)
    return customer


async def active_customer(session: AsyncSession, uid: str) -> Customer:
    customer = await session.get(Customer, uid)
    if customer is None or customer.status != "active":
        raise _not_found(uid)
    return customer


async def active_card(session: AsyncSession, uid: str, num: int) -> tuple[Customer, Card]:
    customer = await active_customer(session, uid)
    card = await find_card(session, uid, num)
    if card is None or card.status != "active":
        raise NotFound(
            f"Customer {uid!r} has no card {num}.",
            code="card_not_found",
            errors=[FieldError(field="num", message="not a card of this customer")],
        )
    return customer, card


# --- writes to our copy (caller holds the customer's row lock) -----------------------------


def _user_diff(customer: Customer, result: UserResult) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if result.customer_key and customer.key != result.customer_key:
        changes["key"] = "changed"  # never the key itself in the audit trail
        customer.key = result.customer_key
    for attr, value in (("email", result.email), ("phone", result.phone)):
        value = value or None
        if getattr(customer, attr) != value:
            changes[attr] = value
            setattr(customer, attr, value)
    if customer.status != "active":
        changes["status"] = "active"
        customer.status = "active"
    return changes


def _mark_customer_deleted(
    session: AsyncSession,
    customer: Customer,
    cards: list[Card],
    actor: str,
    type_: str,
    **data: Any,
) -> CustomerEvent:
    customer.status = "deleted"
    for card in cards:
        card.status = "deleted"
    return add_event(session, customer.uid, type_, actor=actor, data=data or None)


def _set_card(
    session: AsyncSession, uid: str, card: Card | None, num: int, info: CardResult
) -> tuple[Card, dict[str, Any], bool]:
    """Our card row `num` made equal to the gateway's answer (`info` succeeded): the row, what
    changed, and whether it is new."""
    values: dict[str, Any] = {
        "masked_number": info.masked_number or None,
        "expiry": info.expiry or None,
        "first_name": info.first_name or None,
        "last_name": info.last_name or None,
        "status": "active",
    }
    if card is None:
        card = Card(customer_uid=uid, num=num, **values)
        session.add(card)
        return card, values, True
    changes = {k: v for k, v in values.items() if getattr(card, k) != v}
    for k, v in changes.items():
        setattr(card, k, v)
    return card, changes, False


def apply_card(
    session: AsyncSession, uid: str, card: Card | None, num: int, info: CardResult, actor: str
) -> tuple[Card, CustomerEvent | None]:
    """`_set_card` plus its audit event (card_added / card_refreshed), if anything changed."""
    card, changes, created = _set_card(session, uid, card, num, info)
    if not changes:
        return card, None
    type_ = "card_added" if created else "card_refreshed"
    return card, add_event(session, uid, type_, actor=actor, card_num=num, data=_safe(changes))


def _safe(values: dict[str, Any]) -> dict[str, Any]:
    """What the audit trail keeps of a card: the masked number and expiry, no holder name."""
    return {k: v for k, v in values.items() if k in ("masked_number", "expiry", "status")}


# --- customers -----------------------------------------------------------------------------


async def create_customer(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    uid: str,
    email: str | None,
    phone: str | None,
    *,
    actor: str,
) -> Customer:
    async with sessions() as session:
        existing = await session.get(Customer, uid)
        if existing is not None and existing.status == "active":
            raise Conflict(
                f"Customer {uid!r} already exists.",
                code="duplicate_customer",
                errors=[FieldError(field="uid", message="already registered")],
            )
    result = await gateway.register_user(uid, email, phone, ref=uid)
    if error_kind(result) == ErrorKind.CUSTOMER_EXISTS:
        raise Conflict(
            f"Customer {uid!r} is already registered at the gateway; "
            f"POST /v1/customers/{uid}/sync imports it.",
            code="duplicate_customer",
            errors=[FieldError(field="uid", message="already registered at the gateway")],
            extra={"gateway_code": error_code(result)},
        )
    if error_kind(result) == ErrorKind.CUSTOMER_DELETED:
        raise Conflict(
            f"Customer {uid!r} was deleted at the gateway; a deleted uid cannot be reused.",
            code="customer_deleted",
            errors=[FieldError(field="uid", message="deleted at the gateway")],
            extra={"gateway_code": error_code(result)},
        )
    raise_for(result, uid=uid)
    assert result.customer_key
    async with sessions() as session:
        customer = await lock_customer(session, uid)
        if customer is None:
            customer = Customer(
                uid=uid, key=result.customer_key, email=email, phone=phone, status="active"
            )
            session.add(customer)
        else:
            customer.key, customer.email, customer.phone = result.customer_key, email, phone
            customer.status = "active"
        add_event(
            session, uid, "customer_created", actor=actor, data={"email": email, "phone": phone}
        )
        await bind(session, "customer", uid)
        await session.commit()
    log.info("customer %s registered by %s", uid, actor)
    return customer


async def refresh_customer(
    sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, uid: str, *, actor: str
) -> tuple[Customer, bool]:
    """Re-reads the user (cmd 3) into our copy; (customer, False) when the gateway could not
    answer and our last known copy is all there is."""
    async with sessions() as session:
        customer = await session.get(Customer, uid)
        if customer is None:
            raise _not_found(uid)
    result = await gateway.get_user(uid, ref=uid)
    if result.outcome in (Outcome.UNKNOWN, Outcome.UNAVAILABLE):
        return customer, False
    code = error_code(result)
    if result.outcome != Outcome.SUCCESS and error_kind(result) not in USER_GONE:
        raise_for(result, uid=uid)
    async with sessions() as session:
        locked = await lock_customer(session, uid)
        assert locked is not None
        if result.outcome == Outcome.SUCCESS:
            changes = _user_diff(locked, result)
            if changes:
                add_event(session, uid, "customer_refreshed", actor=actor, data=changes)
        elif locked.status == "active":
            _mark_customer_deleted(
                session,
                locked,
                await cards_of(session, uid),
                actor,
                "customer_repaired",
                status="deleted",
                gateway_code=code,
            )
        await session.commit()
        return locked, True


async def update_customer(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    uid: str,
    email: str | None,
    phone: str | None,
    *,
    actor: str,
) -> Customer:
    async with sessions() as session:
        customer = await active_customer(session, uid)
        key = customer.key
    result = await gateway.update_user(uid, key, email, phone, ref=uid)
    raise_for(result, uid=uid)
    async with sessions() as session:
        locked = await lock_customer(session, uid)
        assert locked is not None
        changes: dict[str, Any] = {}
        if email is not None:
            locked.email = changes["email"] = email
        if phone is not None:
            locked.phone = changes["phone"] = phone
        add_event(session, uid, "customer_updated", actor=actor, data=changes)
        await session.commit()
        return locked


async def delete_customer(
    sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, uid: str, *, actor: str
) -> None:
    async with sessions() as session:
        customer = await session.get(Customer, uid)
        if customer is None:
            raise _not_found(uid)
        if customer.status == "deleted":
            return
        key = customer.key
    result = await gateway.delete_user(uid, key, ref=uid)
    code = error_code(result)
    # Already gone at the gateway: the goal is reached, our copy follows.
    if result.outcome != Outcome.SUCCESS and error_kind(result) not in USER_GONE:
        raise_for(result, uid=uid)
    async with sessions() as session:
        locked = await lock_customer(session, uid)
        assert locked is not None
        if locked.status != "deleted":
            _mark_customer_deleted(
                session,
                locked,
                await cards_of(session, uid),
                actor,
                "customer_deleted",
                **({"gateway_code": code} if code else {}),
            )
        await session.commit()
    log.info("customer %s deleted by %s", uid, actor)


async def import_customer(
    sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, uid: str, *, actor: str
) -> Customer | None:
    """Our copy of a user the gateway has and we do not (cmd 3); None if it has none either
    or cannot say now. Read-only at the gateway, so safe anywhere."""
    result = await gateway.get_user(uid, ref=uid)
    if result.outcome != Outcome.SUCCESS or not result.customer_key:
        return None
    async with sessions() as session:
        customer = await lock_customer(session, uid)
        if customer is None:
            customer = Customer(
                uid=uid,
                key=result.customer_key,
                email=result.email or None,
                phone=result.phone or None,
                status="active",
            )
            session.add(customer)
            add_event(session, uid, "customer_imported", actor=actor)
        else:
            changes = _user_diff(customer, result)
            if changes:
                add_event(session, uid, "customer_repaired", actor=actor, data=changes)
        await session.commit()
        return customer


# --- cards ---------------------------------------------------------------------------------


async def register_card(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    uid: str,
    token: str,
    *,
    actor: str,
    num: int | None = None,
    token_key: str | None = None,
) -> Card:
    """Registers a card by token (carduser_token cmd 4), or replaces card `num` with it.
    `token_key`: SBPS's key of the token (MG02-00131-101 needs it)."""
    async with sessions() as session:
        if num is None:
            key = (await active_customer(session, uid)).key
        else:
            key = (await active_card(session, uid, num))[0].key
    result = await gateway.register_card(uid, key, token, num, ref=uid, token_key=token_key)
    raise_for(result, uid=uid, num=num)
    registered = result.card_seq if result.card_seq is not None else num
    assert registered is not None
    return await store_card(
        sessions,
        gateway,
        uid,
        key,
        registered,
        actor=actor,
        type_="card_registered" if num is None else "card_updated",
    )


async def store_card(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    uid: str,
    key: str,
    num: int,
    *,
    actor: str,
    type_: str,
    cs_id: str | None = None,
) -> Card:
    """After the gateway registered card `num`: read it back (cmd 6) for the masked number and
    expiry, and write our copy. If the read fails, the row is kept with the number only and
    the next sync fills it in."""
    info = await gateway.get_card(uid, key, num, ref=uid)
    async with sessions() as session:
        customer = await lock_customer(session, uid)
        if customer is None:
            raise _not_found(uid)
        card = await find_card(session, uid, num)
        if info.outcome == Outcome.SUCCESS:
            card, _, _ = _set_card(session, uid, card, num, info)
        elif card is None:
            card = Card(customer_uid=uid, num=num, status="active")
            session.add(card)
        else:
            card.status = "active"
        data: dict[str, Any] = {"masked_number": card.masked_number, "expiry": card.expiry}
        if cs_id:
            data["checkout_session_id"] = cs_id
        add_event(session, uid, type_, actor=actor, card_num=num, data=data)
        await bind(session, "card", f"{uid}/{num}")
        await session.commit()
        return card


async def read_back_cards(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    *,
    older_than: timedelta,
    actor: str,
    limit: int = 20,
) -> int:
    """Reads back (cmd 6) active cards we keep without the gateway's copy (no masked number)
    that were last touched more than `older_than` ago: a registration's read-back that a
    crash or a gateway error cut off. A card that cannot be read now is tried again after
    `older_than`; one the gateway no longer has is marked deleted (refresh_card)."""
    cutoff = utcnow() - older_than
    async with sessions() as session:
        stmt = (
            select(Card.customer_uid, Card.num)
            .where(
                Card.status == "active",
                Card.masked_number.is_(None),
                Card.updated_at < cutoff,
            )
            .order_by(Card.updated_at)
            .limit(limit)
        )
        todo = [(uid, num) for uid, num in (await session.execute(stmt)).all()]
    done = 0
    for uid, num in todo:
        try:
            await refresh_card(sessions, gateway, uid, num, actor=actor)
            done += 1
        except Exception as exc:
            log.warning("card %s/%d not read back yet: %s", uid, num, exc)
            async with sessions() as session:
                card = await find_card(session, uid, num)
                if card is not None:
                    card.updated_at = utcnow()  # tried: wait `older_than` before the next try
                await session.commit()
    if done:
        log.info("read back %d registered card(s) left unread", done)
    return done


async def refresh_card(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    uid: str,
    num: int,
    *,
    actor: str,
) -> Card:
    """Re-reads card `num` (cmd 6) into our copy."""
    async with sessions() as session:
        customer, _ = await active_card(session, uid, num)
        key = customer.key
    info = await gateway.get_card(uid, key, num, ref=uid)
    gone = error_kind(info) in CARD_GONE
    if info.outcome != Outcome.SUCCESS and not gone:
        raise_for(info, uid=uid, num=num)
    async with sessions() as session:
        await lock_customer(session, uid)
        card = await find_card(session, uid, num)
        if gone:
            if card is not None and card.status == "active":
                card.status = "deleted"
                add_event(
                    session,
                    uid,
                    "card_repaired",
                    actor=actor,
                    card_num=num,
                    data={"status": "deleted", "gateway_code": error_code(info)},
                )
            await session.commit()
            raise_for(info, uid=uid, num=num)
        card, _ = apply_card(session, uid, card, num, info, actor)
        await session.commit()
        return card


async def delete_card(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    uid: str,
    num: int,
    *,
    actor: str,
) -> None:
    async with sessions() as session:
        customer, _ = await active_card(session, uid, num)
        key = customer.key
    result = await gateway.delete_card(uid, key, num, ref=uid)
    code = error_code(result)
    if result.outcome != Outcome.SUCCESS and error_kind(result) not in CARD_GONE:
        raise_for(result, uid=uid, num=num)
    async with sessions() as session:
        await lock_customer(session, uid)
        card = await find_card(session, uid, num)
        if card is not None and card.status != "deleted":
            card.status = "deleted"
            add_event(
                session,
                uid,
                "card_deleted",
                actor=actor,
                card_num=num,
                data={"gateway_code": code} if code else None,
            )
        await session.commit()


# --- reconciliation ------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncResult:
    customer: Customer | None
    cards: list[Card]
    changes: list[CustomerEvent]


async def sync(
    sessions: async_sessionmaker[AsyncSession], gateway: PaymentGateway, uid: str, *, actor: str
) -> SyncResult:
    """Re-reads the user (cmd 3) and its cards (cmd 6 for each one we know, then the numbers
    after the highest) and makes our copy match. Gateway reads first, then one transaction."""
    user = await gateway.get_user(uid, ref=uid)
    user_code = error_code(user)
    if user.outcome != Outcome.SUCCESS and error_kind(user) not in USER_GONE:
        raise_for(user, uid=uid)
    async with sessions() as session:
        known = await cards_of(session, uid, active_only=False)
    card_answers: dict[int, CardResult] = {}
    if user.outcome == Outcome.SUCCESS and user.customer_key:
        card_answers = await _read_cards(gateway, uid, user.customer_key, known)

    changes: list[CustomerEvent] = []
    async with sessions() as session:
        customer = await lock_customer(session, uid)
        rows = {c.num: c for c in await cards_of(session, uid, active_only=False)}
        if user.outcome == Outcome.SUCCESS:
            customer = _sync_user(session, customer, uid, user, actor, changes)
            _sync_cards(session, uid, rows, card_answers, actor, changes)
        elif customer is not None and customer.status == "active":
            changes.append(
                _mark_customer_deleted(
                    session,
                    customer,
                    list(rows.values()),
                    actor,
                    "customer_repaired",
                    status="deleted",
                    gateway_code=user_code,
                )
            )
        await session.commit()
        cards = await cards_of(session, uid) if customer is not None else []
    log.info("customer %s synced by %s: %d change(s)", uid, actor, len(changes))
    return SyncResult(customer=customer, cards=cards, changes=changes)


async def _read_cards(
    gateway: PaymentGateway, uid: str, key: str, known: list[Card]
) -> dict[int, CardResult]:
    """The gateway's answer for each active card we know, then for the numbers after the
    highest until the first gap (cards registered without us)."""
    answers: dict[int, CardResult] = {}
    for card in known:
        if card.status == "active":
            answers[card.num] = await gateway.get_card(uid, key, card.num, ref=uid)
    num = max((c.num for c in known), default=0) + 1
    for _ in range(MAX_PROBES):
        probe = await gateway.get_card(uid, key, num, ref=uid)
        if probe.outcome != Outcome.SUCCESS:
            break  # the first gap (ER149) ends the cards registered after ours
        answers[num] = probe
        num += 1
    return answers


def _sync_user(
    session: AsyncSession,
    customer: Customer | None,
    uid: str,
    user: UserResult,
    actor: str,
    changes: list[CustomerEvent],
) -> Customer:
    """Our customer made to match the gateway's user: imported if we had none, repaired if it
    differs (events appended to `changes`)."""
    assert user.customer_key
    if customer is None:
        customer = Customer(
            uid=uid,
            key=user.customer_key,
            email=user.email or None,
            phone=user.phone or None,
            status="active",
        )
        session.add(customer)
        changes.append(add_event(session, uid, "customer_imported", actor=actor))
        return customer
    diff = _user_diff(customer, user)
    if diff:
        changes.append(add_event(session, uid, "customer_repaired", actor=actor, data=diff))
    return customer


def _sync_cards(
    session: AsyncSession,
    uid: str,
    rows: dict[int, Card],
    answers: dict[int, CardResult],
    actor: str,
    changes: list[CustomerEvent],
) -> None:
    """Our card rows made to match the gateway's answers (events appended to `changes`)."""
    for num, answer in sorted(answers.items()):
        row = rows.get(num)
        if answer.outcome == Outcome.SUCCESS:
            _, event = apply_card(session, uid, row, num, answer, actor)
            if event is not None:
                changes.append(event)
        elif error_kind(answer) in CARD_GONE and row is not None and row.status == "active":
            row.status = "deleted"
            changes.append(
                add_event(
                    session,
                    uid,
                    "card_repaired",
                    actor=actor,
                    card_num=num,
                    data={"status": "deleted", "gateway_code": error_code(answer)},
                )
            )
        # Anything else (timeout, maintenance): leave the row as it is for next time.
