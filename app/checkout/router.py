"""Checkout: the merchant API, the shopper's page and its form post, the JSON pay call,
and (sandbox only) the demo shop at `/`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from sqlalchemy import select

from app import velocity
from app.auth import MerchantDep
from app.checkout import service
from app.checkout.schemas import CheckoutSessionCreate, PayRequest
from app.config import Settings
from app.customers import registration
from app.customers import service as customers
from app.customers.models import Customer
from app.db import database_unavailable
from app.deps import GatewayDep, SessionDep, SessionFactoryDep, SettingsDep
from app.errors import (
    DATABASE_DOWN_NOT_CHARGED,
    AppError,
    Conflict,
    GatewayFailure,
    NotFound,
    PaymentDeclined,
    Problem,
    ServiceUnavailable,
    Unprocessable,
    database_guard,
    problem_from_error,
)
from app.fields import card_fields_in
from app.gateway.robotpayment.errors import lookup
from app.hosted.models import CheckoutSession
from app.hosted.schemas import CheckoutSessionOut
from app.hosted.service import ensure_payable
from app.idempotency import Bound, OptionalKeyHeader, Resumed, run_idempotent
from app.payments.models import Payment
from app.payments.schemas import ShopperPaymentOut
from app.payments.service import never_sent
from app.web import card_result_page, cross_site_refusal, error_page, lang_of, messages, render

router = APIRouter(tags=["checkout"])
log = logging.getLogger(__name__)

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem} for code in (401, 403, 404, 409, 410, 422, 429)
}
# The shopper's pages answer errors as HTML pages (with the page's security headers).
_PAGE = {"content": {"text/html": {"schema": {"type": "string"}}}}
_PAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such session", **_PAGE},
    409: {"description": "Already paid", **_PAGE},
    410: {"description": "Expired", **_PAGE},
}
_FORM_ERRORS: dict[int | str, dict[str, Any]] = {
    **_PAGE_ERRORS,
    403: {"description": "Posted from another site (Origin, Sec-Fetch-Site)", **_PAGE},
    422: {"description": "Card data posted, or no token", **_PAGE},
    429: {"description": "Too many attempts", **_PAGE},
    502: {"description": "The gateway refused the request", **_PAGE},
    503: {"description": "The gateway is in maintenance or the database is down", **_PAGE},
}
# The form the page posts (read by hand: the raw form, so stray card fields can be refused).
_FORM_BODY = {
    "requestBody": {
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "tkn": {"type": "string", "description": "CPToken.js token"},
                        "card_num": {"type": "string", "description": "a saved card's num"},
                        "num": {"type": "string", "description": "same as card_num"},
                        "save_card": {"type": "string", "enum": ["1"]},
                        "lang": {"type": "string", "enum": ["ja", "en"]},
                    },
                }
            }
        }
    }
}


def _session_out(
    settings: Settings, cs: CheckoutSession, payment_id: str | None, payment_status: str | None
) -> CheckoutSessionOut:
    url = f"{settings.public_base_url.rstrip('/')}/checkout/{cs.id}"
    return CheckoutSessionOut.of(cs, url, payment_id, payment_status)


# --- merchant API ----------------------------------------------------------------------------


@router.post(
    "/v1/checkout/sessions",
    status_code=201,
    response_model=CheckoutSessionOut,
    responses=_PROBLEMS,
    summary="Create a checkout session (Idempotency-Key honoured)",
)
async def create_checkout_session(
    request: Request,
    body: CheckoutSessionCreate,
    principal: MerchantDep,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    idempotency_key: OptionalKeyHeader = None,
) -> Response:
    async def handler() -> Response:
        async with sessions() as session:
            cs = await service.create_session(session, body, created_by=principal.id)
        out = _session_out(settings, cs, None, None)
        return JSONResponse(out.model_dump(mode="json"), status_code=201)

    async def resume(bound: Bound) -> Resumed:
        # The key's session exists: answer with it, never create a second one.
        async with sessions() as session:
            cs = await session.get(CheckoutSession, bound.id)
        assert cs is not None
        out = _session_out(settings, cs, None, None)
        return Resumed(JSONResponse(out.model_dump(mode="json"), status_code=201))

    return await run_idempotent(
        request,
        sessions,
        principal=principal.id,
        key=idempotency_key,
        payload=body.model_dump_json().encode(),
        handler=handler,
        resume=resume,
    )


@router.get(
    "/v1/checkout/sessions/{session_id}",
    response_model=CheckoutSessionOut,
    responses=_PROBLEMS,
    summary="A checkout session and its payment status",
)
async def get_checkout_session(
    session_id: str, _: MerchantDep, settings: SettingsDep, session: SessionDep
) -> CheckoutSessionOut:
    cs = await session.get(CheckoutSession, session_id)
    if cs is None:
        raise NotFound("This checkout session does not exist.")
    p = await service.last_payment(session, cs.id)
    return _session_out(settings, cs, p.id if p else None, p.status if p else None)


# --- the shopper's page ------------------------------------------------------------------------


def _three_ds(cs: CheckoutSession) -> dict[str, str]:
    """Exactly what the server will send to gateway_token.aspx (3DS must match it)."""
    values: dict[str, str] = (
        {"iid": cs.item_code}
        if cs.item_code
        else {"am": str(cs.amount), "tx": str(cs.tax), "sf": str(cs.shipping)}
    )
    if cs.email:
        values["em"] = cs.email
    if cs.phone:
        values["pn"] = cs.phone
    return values


def _zero_three_ds(cs: CheckoutSession) -> dict[str, str]:
    """3-D Secure for a card registration: am=tx=sf=0 and the customer's e-mail/phone."""
    values = {"am": "0", "tx": "0", "sf": "0"}
    if cs.email:
        values["em"] = cs.email
    if cs.phone:
        values["pn"] = cs.phone
    return values


@router.get("/checkout/{session_id}", response_class=HTMLResponse, responses=_PAGE_ERRORS)
async def checkout_page(
    request: Request,
    session_id: str,
    settings: SettingsDep,
    session: SessionDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> HTMLResponse:
    lang = lang_of(request)
    known = await session.get(CheckoutSession, session_id)
    if known is not None and known.kind == "billing_card":
        from app.billing import page as billing_page  # imports this module

        return await billing_page.show(request, settings, session, session_id, lang)
    if known is not None and known.kind == "card_registration" and known.status == "completed":
        return _registration_result(settings, lang, known, None)
    try:
        cs = await service.get_open_session(session, session_id)
    except AppError as exc:
        # Back to the shop: its thank-you page when already paid, else its cart.
        back = None
        if known is not None:
            back = known.success_url if exc.status == 409 else known.cancel_url
        return error_page(settings, lang, exc.status, exc.detail or exc.title, back)
    registration = cs.kind == "card_registration"
    if not registration:
        live = await service.live_payment(session, cs.id)
        # A payment whose pay stopped before sending does not block the page: paying fails it.
        if live is not None and not never_sent(live, claim=settings.pay_claim):
            return _result_page(settings, lang, cs, live.id, service.page_status(live), live)
    uid = cs.customer_uid
    may_save = cs.save_card or cs.offer_save_card
    if not registration and may_save and uid and await session.get(Customer, uid) is None:
        # The gateway may know this uid although we do not (ER652 on the combined path): ask
        # it (read-only, with our transaction closed) so the card gets registered on the
        # existing user instead.
        await session.rollback()
        await customers.import_customer(sessions, gateway, uid, actor=f"checkout:{session_id}")
        await session.refresh(cs)
    register_first = not registration and await service.registers_first(session, cs)
    # With the shopper's "save this card" box ticked, 3-D Secure may need other values (a
    # registration on a customer the gateway knows): the page script switches to them.
    three_ds_save = None
    if not registration and cs.offer_save_card:
        first = await service.registers_first(session, cs, requested=True)
        three_ds_save = _zero_three_ds(cs) if first else _three_ds(cs)
    saved_cards = [] if registration else await service.saved_cards(session, cs)
    registered_cards = await customers.cards_of(session, uid) if registration and uid else []
    other = "ja" if lang == "en" else "en"
    t = messages(lang)
    notice = t["card_deleted"] if registration and request.query_params.get("deleted") else None
    return render(
        settings,
        "checkout.html",
        lang=lang,
        t=t,
        session=cs,
        mode=settings.checkout_mode,
        aid=settings.gateway_aid,
        gateway_js_base=f"{settings.gateway_public_base}/gateway/js",
        post_url=f"/checkout/{cs.id}",
        three_ds=_zero_three_ds(cs) if registration or register_first else _three_ds(cs),
        three_ds_save=three_ds_save,
        offer_save_card=cs.offer_save_card and not registration,
        saved_cards=saved_cards,
        registration=registration,
        registered_cards=registered_cards,
        notice=notice,
        saves_card=cs.save_card,
        switch_lang_url=f"/checkout/{cs.id}?lang={other}",
        static_base="/static",
    )


def _result_page(
    settings: Settings,
    lang: str,
    cs: CheckoutSession,
    payment_id: str,
    status: str,
    payment: Any,
    status_code: int = 200,
) -> HTMLResponse:
    t = messages(lang)
    message = {
        "succeeded": t.get("result_succeeded", "Payment complete"),
        "pending": t.get("result_pending", "Waiting for the gateway"),
        "unknown": t.get("result_unknown", "We are confirming your payment"),
    }.get(status)
    if status == "failed":
        message = _failure_message(lang, getattr(payment, "error_code", None))
    redirect = _redirect_for(cs, status)
    retry = f"/checkout/{cs.id}?lang={lang}" if status == "failed" and cs.status == "open" else None
    return render(
        settings,
        "result.html",
        status_code=status_code,
        lang=lang,
        t=t,
        status=status,
        message=message,
        payment_id=payment_id,
        amount_total=cs.total,
        redirect_url=redirect,
        status_url=f"/checkout/{cs.id}/status",
        retry_url=retry,
    )


def _failure_message(lang: str, code: str | None) -> str:
    if not code:
        return messages(lang).get("result_failed", "The payment failed.")
    info = lookup(code)
    return info.message_ja if lang == "ja" else info.message_en


@router.post(
    "/checkout/{session_id}",
    response_class=HTMLResponse,
    responses=_FORM_ERRORS,
    openapi_extra=_FORM_BODY,
)
async def checkout_form_post(
    request: Request,
    session_id: str,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> HTMLResponse:
    if (refused := cross_site_refusal(request, settings)) is not None:
        return refused
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    lang = "en" if form.get("lang") == "en" else "ja"
    back = f"/checkout/{session_id}?lang={lang}"
    t = messages(lang)
    if card_fields_in(form):
        return error_page(
            settings,
            lang,
            422,
            t.get("error_card_data", "Card data must not be sent to this server."),
            back,
        )
    token = form.get("tkn") or None
    try:
        async with database_guard(DATABASE_DOWN_NOT_CHARGED), sessions() as session:
            kind = await session.scalar(
                select(CheckoutSession.kind).where(CheckoutSession.id == session_id)
            )
    except AppError as exc:
        return error_page(settings, lang, exc.status, exc.detail or exc.title)
    if kind == "card_registration":
        return await _register_from_page(
            request, settings, sessions, gateway, session_id, token, lang
        )
    if kind == "billing_card":
        from app.billing import page as billing_page  # imports this module

        return await billing_page.submit(request, settings, sessions, session_id, token, lang)
    # The page posts `card_num`; `num` (the gateway's name for it) is accepted too.
    card_num_raw = form.get("card_num") or form.get("num") or None
    save_requested = form.get("save_card") == "1"
    try:
        req = PayRequest(token=token, card_num=int(card_num_raw) if card_num_raw else None)
    except ValueError:
        return error_page(
            settings,
            lang,
            422,
            t.get("error_no_token", "No card token was received; please try again."),
            back,
        )
    try:
        result = await service.pay(
            sessions,
            gateway,
            session_id,
            token=req.token,
            card_num=req.card_num,
            result_mode=settings.gateway_result_mode,
            save_card=save_requested,
            client_ip=request.client.host if request.client else None,
            limits=velocity.Limits.of(settings),
            pay_claim=settings.pay_claim,
        )
    except AppError as exc:
        if exc.status == 409 and "payment_id" in exc.extra:
            async with sessions() as session:
                cs = await session.get(CheckoutSession, session_id)
                p = await session.get(Payment, exc.extra["payment_id"])
            if cs is not None and p is not None:
                return _result_page(settings, lang, cs, p.id, service.page_status(p), p)
        return error_page(
            settings, lang, exc.status, exc.detail or exc.title, back if exc.status < 500 else None
        )
    except Exception as exc:
        # The database went away after the gateway call: the payment is settled later from
        # the gateway's records (a new attempt on this session is refused until then).
        if not database_unavailable(exc):
            raise
        log.warning("checkout %s: database unavailable after the gateway call", session_id)
        return error_page(settings, lang, 503, t["error_unavailable_message"])
    status = service.page_status(result.payment)
    # Maintenance (ER999) and the like: the page says "try later", and so does the status.
    error = result.result.error if result.result else None
    code = 503 if status == "failed" and error is not None and error.http_status == 503 else 200
    return _result_page(
        settings, lang, result.session, result.payment.id, status, result.payment, code
    )


async def _register_from_page(
    request: Request,
    settings: Settings,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    session_id: str,
    token: str | None,
    lang: str,
) -> HTMLResponse:
    back = f"/checkout/{session_id}?lang={lang}"
    t = messages(lang)
    if not token:
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, back)
    try:
        cs, card = await registration.register(
            sessions,
            gateway,
            session_id,
            token,
            client_ip=request.client.host if request.client else None,
            limits=velocity.Limits.of(settings),
        )
    except AppError as exc:
        async with sessions() as session:
            known = await session.get(CheckoutSession, session_id)
        if known is None or exc.status in (404, 410, 429):
            return error_page(settings, lang, exc.status, exc.detail or exc.title, None)
        if known.status == "completed":
            return _registration_result(settings, lang, known, None)
        return _registration_result(
            settings, lang, known, exc.detail or exc.title, status_code=exc.status
        )
    label = card.masked_number if card is not None else None
    return _registration_result(settings, lang, cs, None, card_label=label)


def _registration_result(
    settings: Settings,
    lang: str,
    cs: CheckoutSession,
    error: str | None,
    *,
    card_label: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The result page of a card-registration page, worded for a registration."""
    t = messages(lang)
    status = "failed" if error else "succeeded"
    return card_result_page(
        settings,
        lang,
        t,
        status=status,
        message=error or t["register_done"] + (f" ({card_label})" if card_label else ""),
        redirect_url=cs.success_url if status == "succeeded" else cs.cancel_url,
        retry_url=f"/checkout/{cs.id}?lang={lang}" if error and cs.status == "open" else None,
        status_code=status_code,
    )


@router.get(
    "/checkout/{session_id}/status",
    responses={404: {"model": Problem}},
    summary="Payment status of a session (page polling)",
)
async def checkout_status(session_id: str, session: SessionDep) -> dict[str, Any]:
    cs = await session.get(CheckoutSession, session_id)
    if cs is None:
        raise NotFound("This checkout session does not exist.")
    p = await service.last_payment(session, cs.id)
    status = service.page_status(p) if p else "open"
    return {
        "status": status,
        "payment_id": p.id if p else None,
        "redirect_url": _redirect_for(cs, status),
    }


@router.post("/checkout/{session_id}/cards/{num}/delete", include_in_schema=False)
async def delete_card_from_page(
    request: Request,
    session_id: str,
    num: int,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> Response:
    """A card-registration page's delete button: the session (an unguessable, expiring
    capability for one customer) may delete that customer's cards, nobody else's."""
    if (refused := cross_site_refusal(request, settings)) is not None:
        return refused
    form = await request.form()
    lang = "en" if form.get("lang") == "en" else "ja"
    back = f"/checkout/{session_id}?lang={lang}"
    async with sessions() as session:
        cs = await session.get(CheckoutSession, session_id)
    try:
        if cs is None or cs.kind != "card_registration" or not cs.customer_uid:
            raise NotFound("This card page does not exist.")
        ensure_payable(cs)
        await customers.delete_card(
            sessions, gateway, cs.customer_uid, num, actor=f"card-page:{session_id}"
        )
    except AppError as exc:
        return error_page(
            settings, lang, exc.status, exc.detail or exc.title, back if exc.status < 500 else None
        )
    # Post/redirect/get: a reload of the page does not post the delete again.
    return RedirectResponse(f"{back}&deleted=1", status_code=303)


def _redirect_for(cs: CheckoutSession, status: str) -> str | None:
    """Where the shopper goes next: the shop's success or cancel page."""
    return {"succeeded": cs.success_url, "failed": cs.cancel_url}.get(status)


@router.post(
    "/v1/checkout/sessions/{session_id}/pay",
    response_model=ShopperPaymentOut,
    responses={
        **_PROBLEMS,
        402: {"model": Problem},
        502: {"model": Problem},
        503: {"model": Problem},
    },
    summary="Pay a checkout session with a token or a saved card",
    description="No API key: the unguessable, single-use session id is the capability.",
)
async def pay_session(
    request: Request,
    session_id: str,
    body: PayRequest,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> JSONResponse:
    result = await service.pay(
        sessions,
        gateway,
        session_id,
        token=body.token,
        card_num=body.card_num,
        result_mode=settings.gateway_result_mode,
        save_card=body.save_card,
        client_ip=request.client.host if request.client else None,
        limits=velocity.Limits.of(settings),
        pay_claim=settings.pay_claim,
    )
    out = ShopperPaymentOut.of(result.payment).model_dump(mode="json")
    status = service.page_status(result.payment)
    if status == "failed":
        info = result.result.error if result.result else None
        if result.payment.error_code and (info is None or info.code != result.payment.error_code):
            # Settled by other evidence (a kickback) before this answer: say what it showed.
            info = lookup(result.payment.error_code)
        # The problem type follows what went wrong: a decline (402), a bad or reused token
        # (422), a gateway-side refusal (502), maintenance (503).
        kind = _PROBLEM_BY_STATUS.get(info.http_status if info else 402, PaymentDeclined)
        err = kind(
            info.message_en if info else "The payment failed.",
            code=info.stable_code if info else None,
            extra={"payment": out, "gateway_code": info.code if info else None},
        )
        return problem_from_error(request, err)
    return JSONResponse(out, status_code=200 if status == "succeeded" else 202)


_PROBLEM_BY_STATUS: dict[int, type[AppError]] = {
    402: PaymentDeclined,
    409: Conflict,
    422: Unprocessable,
    502: GatewayFailure,
    503: ServiceUnavailable,
}


# --- sandbox demo shop -------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def demo_shop(request: Request, settings: SettingsDep) -> Response:
    if settings.gateway_mode != "sandbox":
        return RedirectResponse("/docs")
    from app.sandbox import cards  # only in sandbox mode: live never loads the simulator

    lang = lang_of(request)
    return render(
        settings,
        "demo.html",
        lang=lang,
        t=messages(lang),
        post_url="/demo/checkout",
        test_cards=cards.describe(),
    )


@router.post("/demo/checkout", include_in_schema=False)
async def demo_checkout(request: Request, settings: SettingsDep, session: SessionDep) -> Response:
    if settings.gateway_mode != "sandbox":
        return error_page(settings, "ja", 404, "Not found")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        data = CheckoutSessionCreate(
            amount=int(form.get("amount", "1000")),
            tax=int(form.get("tax", "0")),
            shipping=int(form.get("shipping", "0")),
            job="AUTH" if form.get("job") == "AUTH" else "CAPTURE",
            email=form.get("email") or "demo@example.com",
            customer_id=form.get("customer_id") or None,
            save_card=bool(form.get("save_card")) and bool(form.get("customer_id")),
            success_url=f"{settings.public_base_url.rstrip('/')}/",
            cancel_url=f"{settings.public_base_url.rstrip('/')}/",
        )
    except ValueError as exc:
        return error_page(settings, "ja", 422, str(exc), "/")
    cs = await service.create_session(session, data, created_by="demo-shop")
    return RedirectResponse(f"/checkout/{cs.id}", status_code=303)
