"""Merchant API for stored customers and cards (carduser / carduser_token), their sync with
the gateway, and card-registration pages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import JSONResponse

from app.auth import MerchantDep
from app.carddata import NoCardData
from app.customers import registration, service
from app.customers.schemas import (
    CardCreate,
    CardList,
    CardOut,
    CardRegistrationSessionCreate,
    CustomerCreate,
    CustomerEventOut,
    CustomerOut,
    CustomerUpdate,
    SyncOut,
)
from app.deps import GatewayDep, SessionDep, SessionFactoryDep, SettingsDep
from app.errors import NotFound, Problem
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession
from app.hosted.schemas import CheckoutSessionOut
from app.idempotency import Bound, Idempotent, Resumed

router = APIRouter(prefix="/v1/customers", tags=["customers"])

UidPath = Annotated[str, Path(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9]+$"), NoCardData]
NumPath = Annotated[int, Path(ge=0, le=999_999_999, description="card number (num)")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 409, 422, 502, 503)
}


async def _out(
    session: SessionDep, uid: str, *, refreshed: bool = True, events: bool = False
) -> CustomerOut:
    customer = await service.existing_customer(session, uid, fresh=True)
    return CustomerOut.of(
        customer,
        await service.cards_of(session, uid),
        refreshed=refreshed,
        events=await service.events_of(session, uid) if events else None,
    )


@router.post("", status_code=201, response_model=CustomerOut, responses=_ERRORS, summary="Register")
async def create_customer(
    body: CustomerCreate,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    session: SessionDep,
    idempotent: Idempotent,
) -> Response:
    """carduser cmd 0. `409 duplicate_customer` when the uid exists (ER652), `409
    customer_deleted` when it was deleted (ER653). `Idempotency-Key` honoured."""

    async def handler() -> Response:
        await service.create_customer(
            sessions, gateway, body.uid, body.email, body.phone, actor=principal.id
        )
        out = await _out(session, body.uid)
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    async def resume(bound: Bound) -> Resumed:
        # The key's customer was registered and stored: answer with it, never register again.
        out = await _out(session, bound.id)
        return Resumed(JSONResponse(out.model_dump(mode="json"), status_code=201))

    return await idempotent.run(principal, handler, body=body, resume=resume)


@router.get("/{uid}", response_model=CustomerOut, responses=_ERRORS, summary="Customer")
async def get_customer(
    uid: UidPath,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    session: SessionDep,
) -> CustomerOut:
    """Re-reads the user at the gateway (carduser cmd 3) into our copy; returns it with its
    cards (our copy) and audit events. `refreshed=false`: the gateway could not answer."""
    _, refreshed = await service.refresh_customer(sessions, gateway, uid, actor=principal.id)
    return await _out(session, uid, refreshed=refreshed, events=True)


@router.patch("/{uid}", response_model=CustomerOut, responses=_ERRORS, summary="Update")
async def update_customer(
    uid: UidPath,
    body: CustomerUpdate,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    session: SessionDep,
) -> CustomerOut:
    """carduser cmd 1: e-mail and/or phone."""
    await service.update_customer(
        sessions, gateway, uid, body.email, body.phone, actor=principal.id
    )
    return await _out(session, uid)


@router.delete("/{uid}", status_code=204, responses=_ERRORS, summary="Delete")
async def delete_customer(
    uid: UidPath, principal: MerchantDep, sessions: SessionFactoryDep, gateway: GatewayDep
) -> Response:
    """carduser cmd 2; the customer's cards go with it."""
    await service.delete_customer(sessions, gateway, uid, actor=principal.id)
    return Response(status_code=204)


@router.post("/{uid}/sync", response_model=SyncOut, responses=_ERRORS, summary="Reconcile")
async def sync_customer(
    uid: UidPath,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    session: SessionDep,
) -> SyncOut:
    """Re-reads the gateway (cmd 3, cmd 6 per card, and the card numbers after the highest
    known) and fixes our copy; every fix is an audit event, listed in `changes`."""
    result = await service.sync(sessions, gateway, uid, actor=principal.id)
    if result.customer is None:
        raise NotFound(f"No customer {uid!r} here or at the gateway.", code="customer_not_found")
    return SyncOut(
        customer=await _out(session, uid),
        changes=[CustomerEventOut.of(e) for e in result.changes],
    )


# --- cards ---------------------------------------------------------------------------------


@router.post(
    "/{uid}/cards",
    status_code=201,
    response_model=CardOut,
    responses={**_ERRORS, 402: {"model": Problem}},
    summary="Register a card",
)
async def add_card(
    uid: UidPath,
    body: CardCreate,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    idempotent: Idempotent,
) -> Response:
    """carduser_token cmd 4 with a CPToken.js token (3-D Secure with am=tx=sf=0), then
    carduser cmd 6 for the masked number and expiry. `Idempotency-Key` honoured: a retry
    replays the answer instead of sending the single-use token again."""

    async def handler() -> Response:
        card = await service.register_card(
            sessions, gateway, uid, body.token, actor=principal.id, token_key=body.token_key
        )
        return JSONResponse(CardOut.of(card).model_dump(mode="json"), status_code=201)

    async def resume(bound: Bound) -> Resumed:
        # The key's card is registered and stored: answer with it, never resend the token.
        owner, num = bound.id.rsplit("/", 1)
        async with sessions() as session:
            card = await service.find_card(session, owner, int(num))
        assert card is not None
        return Resumed(JSONResponse(CardOut.of(card).model_dump(mode="json"), status_code=201))

    return await idempotent.run(principal, handler, body=body, resume=resume)


@router.get("/{uid}/cards", response_model=CardList, responses=_ERRORS, summary="Cards")
async def list_cards(uid: UidPath, _: MerchantDep, session: SessionDep) -> CardList:
    """Our copy of the customer's active cards (masked)."""
    await service.existing_customer(session, uid)
    return CardList(data=[CardOut.of(c) for c in await service.cards_of(session, uid)])


@router.get("/{uid}/cards/{num}", response_model=CardOut, responses=_ERRORS, summary="Card")
async def get_card(
    uid: UidPath,
    num: NumPath,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> CardOut:
    """carduser cmd 6; refreshes our copy."""
    return CardOut.of(await service.refresh_card(sessions, gateway, uid, num, actor=principal.id))


@router.put(
    "/{uid}/cards/{num}",
    response_model=CardOut,
    responses={**_ERRORS, 402: {"model": Problem}},
    summary="Replace a card",
)
async def replace_card(
    uid: UidPath,
    num: NumPath,
    body: CardCreate,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> CardOut:
    """carduser_token cmd 4 with `num`: the card number keeps its place, the card changes."""
    card = await service.register_card(
        sessions, gateway, uid, body.token, actor=principal.id, num=num, token_key=body.token_key
    )
    return CardOut.of(card)


@router.delete("/{uid}/cards/{num}", status_code=204, responses=_ERRORS, summary="Delete card")
async def delete_card(
    uid: UidPath,
    num: NumPath,
    principal: MerchantDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> Response:
    """carduser cmd 5."""
    await service.delete_card(sessions, gateway, uid, num, actor=principal.id)
    return Response(status_code=204)


@router.post(
    "/{uid}/card-sessions",
    status_code=201,
    response_model=CheckoutSessionOut,
    responses=_ERRORS,
    summary="A page where the customer adds a card",
)
async def create_card_session(
    uid: UidPath,
    body: CardRegistrationSessionCreate,
    principal: MerchantDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    idempotent: Idempotent,
) -> Response:
    """A checkout session of kind `card_registration`: its `url` tokenizes a card, runs 3-D
    Secure with am=tx=sf=0 and registers the card (creating the gateway user first if we have
    none). No payment. `card_num` shows the registered card once done. `Idempotency-Key`
    honoured (one page per key)."""

    def answer(cs: CheckoutSession) -> Response:
        url = f"{settings.public_base_url.rstrip('/')}/checkout/{cs.id}"
        out = CheckoutSessionOut.of(cs, url, None, None)
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    async def handler() -> Response:
        return answer(
            await registration.create_session(sessions, uid, body, created_by=principal.id)
        )

    async def resume(bound: Bound) -> Resumed:
        # The key's page exists: answer with it, never make a second one.
        cs = await hosted.find(sessions, bound.id)
        assert cs is not None
        return Resumed(answer(cs))

    return await idempotent.run(principal, handler, body=body, resume=resume)
