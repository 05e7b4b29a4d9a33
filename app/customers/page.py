"""The customer's card page (`Kind.CARD_REGISTRATION`): CPToken.js, 3-D Secure with
am=tx=sf=0, then the token is posted and the card registered on the customer (no payment);
the page also lists the customer's cards with a delete button each. The PageHandler of
app/checkout/pages.py's table."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app import velocity
from app.customers import registration
from app.customers import service as customers
from app.errors import AppError, NotFound
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession, Kind
from app.hosted.pages import (
    Form,
    PageHandler,
    PageRequest,
    card_form,
    no_payment_status,
    zero_three_ds,
)
from app.web import card_label, card_result_page, error_page, messages, problem_text


async def show(page: PageRequest) -> HTMLResponse:
    settings, lang = page.settings, page.lang
    cs, cards = await registration.page_view(page.sessions, page.cs_id)
    if cs is not None and cs.status == "completed":
        # The card this page registered (its post redirected here), while it is kept.
        card = next((c for c in cards if c.num == cs.card_num), None)
        return result(page, cs, None, card_label=card_label(card.masked_number) if card else None)
    try:
        cs = hosted.ensure_payable(cs)
    except AppError as exc:
        back = None
        if cs is not None:
            back = hosted.back_to_shop(cs, succeeded=exc.status == 409)
        return error_page(settings, lang, exc.status, problem_text(lang, exc), back)
    t = messages(lang)
    return await card_form(
        page,
        cs,
        t,
        three_ds=zero_three_ds(cs),
        registered_cards=cards,
        notice=t["card_deleted"] if page.request.query_params.get("deleted") else None,
        saves_card=True,  # the page exists to save the customer's card
    )


async def submit(page: PageRequest, form: Form) -> Response:
    settings, lang = page.settings, page.lang
    token = form.get("tkn") or None
    if not token:
        t = messages(lang)
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, page.back)
    try:
        cs, card = await registration.register(
            page.sessions,
            page.gateway,
            page.cs_id,
            token,
            client_ip=page.client_ip,
            limits=velocity.Limits.of(settings),
            token_key=form.get("tkn_key") or None,  # SBPS's (the page posts it with tkn)
        )
    except AppError as exc:
        known = await hosted.find(page.sessions, page.cs_id)
        if page.navigates and known is not None:
            # Post/redirect/get: the page shows its state (registered, expired, out of
            # attempts) or the form again with the reason.
            if known.status == "completed":
                return page.see_other(page.back)
            return page.back_with_problem(exc.extra.get("gateway_code") or exc.code)
        if known is None or exc.status in (404, 410, 429):
            return error_page(settings, lang, exc.status, problem_text(lang, exc), None)
        if known.status == "completed":
            return result(page, known, None)
        failed = problem_text(lang, exc) or messages(lang)["result_failed"]
        return result(page, known, failed, status_code=exc.status)
    if page.navigates:
        return page.see_other(page.back)  # the page, now registered, shows its result
    label = card_label(card.masked_number) if card is not None else None
    return result(page, cs, None, card_label=label)


def result(
    page: PageRequest,
    cs: CheckoutSession,
    error: str | None,
    *,
    card_label: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The result page of a card page, worded for a registration."""
    lang = page.lang
    t = messages(lang)
    status = "failed" if error else "succeeded"
    return card_result_page(
        page.settings,
        lang,
        t,
        status=status,
        message=error or t["register_done"] + (f" ({card_label})" if card_label else ""),
        redirect_url=hosted.back_to_shop(cs, succeeded=status == "succeeded"),
        retry_url=f"/checkout/{cs.id}?lang={lang}" if error and cs.status == "open" else None,
        scripts=page.result_scripts(),
        status_code=status_code,
    )


async def delete_card(page: PageRequest, num: int) -> Response:
    """A card page's delete button: the page (an unguessable, expiring capability for one
    customer) may delete that customer's cards, nobody else's."""
    cs = await hosted.find(page.sessions, page.cs_id)
    try:
        if cs is None or cs.kind != Kind.CARD_REGISTRATION or not cs.customer_uid:
            raise NotFound("This card page does not exist.")
        hosted.ensure_payable(cs)
        await customers.delete_card(
            page.sessions, page.gateway, cs.customer_uid, num, actor=f"card-page:{page.cs_id}"
        )
    except AppError as exc:
        back = page.back if exc.status < 500 else None
        return error_page(page.settings, page.lang, exc.status, problem_text(page.lang, exc), back)
    # Post/redirect/get: a reload of the page does not post the delete again.
    return RedirectResponse(f"{page.back}&deleted=1", status_code=303)


HANDLER = PageHandler(show=show, submit=submit, status=no_payment_status)
