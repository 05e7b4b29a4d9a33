"""The shopper's pages: `GET /checkout/{id}`, its form post, its status and a card page's
delete button. Every hosted page is served here and handed to its kind's handler (`PAGES`);
app/hosted/pages.py says why the table lives in this top router."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from app import velocity
from app.billing import page as billing_page
from app.checkout import payment_page
from app.checkout import service as checkout
from app.customers import page as customer_page
from app.deps import GatewayDep, SessionFactoryDep, SettingsDep
from app.errors import DATABASE_DOWN_NOT_CHARGED, AppError, NotFound, Problem, database_guard
from app.fields import card_fields_in
from app.hosted import service as hosted
from app.hosted.models import Kind
from app.hosted.pages import PageHandler, PageRequest
from app.pagesec import probe
from app.web import (
    cross_site_refusal,
    error_page,
    form_lang,
    keep_lang,
    lang_of,
    messages,
    problem_text,
)

router = APIRouter(tags=["checkout"])

# The one dispatch on a page's kind (a unit test checks every Kind is here).
PAGES: dict[Kind, PageHandler] = {
    Kind.PAYMENT: payment_page.HANDLER,
    Kind.CARD_REGISTRATION: customer_page.HANDLER,
    Kind.BILLING_CARD: billing_page.HANDLER,
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
    303: {
        "description": "A browser's post (Sec-Fetch-Mode: navigate) goes to its result page "
        "(/checkout/{id}/payments/{payment_id}), or back to the page with the reason "
        "(?problem=<code>); other clients get the page itself"
    },
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
                        "tkn": {
                            "type": "string",
                            "description": "CPToken.js token (SBPS: com_sbps_system_token.js's)",
                        },
                        "tkn_key": {
                            "type": "string",
                            "description": "SBPS: the token's tokenKey (required with tkn)",
                        },
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


def _query(request: Request, name: str) -> str | None:
    # From the raw query (request.query_params garbles CP932 bytes; this value is ASCII).
    raw = request.scope.get("query_string", b"").decode("latin-1")
    return next((v for k, v in parse_qsl(raw) if k == name), None)


@router.get("/checkout/{session_id}", response_class=HTMLResponse, responses=_PAGE_ERRORS)
async def checkout_page(
    request: Request,
    session_id: str,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> HTMLResponse:
    lang = lang_of(request)
    if session_id == probe.SESSION_ID and probe.valid(settings, _query(request, "probe")):
        page = PageRequest(request, settings, sessions, gateway, session_id, lang)
        return await payment_page.probe(page)
    kind = await hosted.kind_of(sessions, session_id)
    if kind is None:
        return error_page(settings, lang, 404)
    page = PageRequest(request, settings, sessions, gateway, session_id, lang)
    response = await PAGES[kind].show(page)
    keep_lang(request, response, settings)
    return response


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
) -> Response:
    if (refused := cross_site_refusal(request, settings)) is not None:
        return refused
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    page = PageRequest(request, settings, sessions, gateway, session_id, form_lang(form))
    if card_fields_in(form):
        t = messages(page.lang)
        message = t.get("error_card_data", "Card data must not be sent to this server.")
        return error_page(settings, page.lang, 422, message, page.back)
    try:
        async with database_guard(DATABASE_DOWN_NOT_CHARGED):
            kind = await hosted.kind_of(sessions, session_id)
    except AppError as exc:
        return error_page(settings, page.lang, exc.status, problem_text(page.lang, exc))
    # An unknown page goes the payment way: its checks answer (no token 422, else 404).
    return await PAGES[kind or Kind.PAYMENT].submit(page, form)


@router.get(
    "/checkout/{session_id}/payments/{payment_id}",
    response_class=HTMLResponse,
    responses={404: {"description": "No such payment of this session", **_PAGE}},
    summary="A payment's result page (where the form post goes)",
)
async def payment_result_page(
    request: Request,
    session_id: str,
    payment_id: str,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> HTMLResponse:
    page = PageRequest(request, settings, sessions, gateway, session_id, lang_of(request))
    if await hosted.kind_of(sessions, session_id) != Kind.PAYMENT:
        return error_page(settings, page.lang, 404)
    response = await payment_page.show_result(page, payment_id)
    keep_lang(request, response, settings)
    return response


@router.get(
    "/checkout/{session_id}/payments/{payment_id}/3ds",
    response_class=HTMLResponse,
    responses={
        303: {"description": "To the payment's result page, after our authorization call"},
        404: {"description": "No 3-D Secure step of this session has that payment", **_PAGE},
        422: {"description": "The return names another authentication", **_PAGE},
    },
    summary="Where the shopper comes back from 3-D Secure (SBPS's ok/ng return URL)",
)
async def three_ds_return(
    request: Request,
    session_id: str,
    payment_id: str,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    res_tds_authentication_id: str | None = None,
) -> Response:
    """The query (result=ok|ng, SBPS's res_result) is a hint only: this makes our own
    authorization call, once per payment whatever comes back how often, and shows its
    answer. `res_tds_authentication_id`, when given, must be the payment's."""
    page = PageRequest(request, settings, sessions, gateway, session_id, lang_of(request))
    try:
        p = await checkout.complete_three_ds(
            sessions,
            gateway,
            session_id,
            payment_id,
            returned_id=res_tds_authentication_id,
            client_ip=page.client_ip,
            limits=velocity.Limits.of(settings),
        )
    except AppError as exc:
        return error_page(settings, page.lang, exc.status, problem_text(page.lang, exc))
    return page.see_other(payment_page.result_url(page, p))


@router.get(
    "/checkout/{session_id}/status",
    responses={404: {"model": Problem}},
    summary="Payment status of a session (page polling)",
)
async def checkout_status(
    request: Request,
    session_id: str,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> dict[str, Any]:
    kind = await hosted.kind_of(sessions, session_id)
    if kind is None:
        raise NotFound("This checkout session does not exist.")
    page = PageRequest(request, settings, sessions, gateway, session_id, lang_of(request))
    return await PAGES[kind].status(page)


@router.post("/checkout/{session_id}/cards/{num}/delete", include_in_schema=False)
async def delete_card_from_page(
    request: Request,
    session_id: str,
    num: int,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> Response:
    """A card page's delete button (customer card pages only)."""
    if (refused := cross_site_refusal(request, settings)) is not None:
        return refused
    lang = form_lang(await request.form())
    page = PageRequest(request, settings, sessions, gateway, session_id, lang)
    return await customer_page.delete_card(page, num)
