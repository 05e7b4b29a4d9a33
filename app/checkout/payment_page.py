"""The payment page (`Kind.PAYMENT`): the page, its form post (pay with a token or a saved
card) and its status answer; the PageHandler of app/checkout/pages.py's table."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from fastapi import Response
from fastapi.responses import HTMLResponse

from app import velocity
from app.checkout import page_view, service
from app.checkout.schemas import PayRequest
from app.config import Settings
from app.db import database_unavailable, utcnow
from app.errors import AppError
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession, Kind
from app.hosted.pages import Form, PageHandler, PageRequest, card_form, zero_three_ds
from app.payments import three_ds as tds
from app.payments.models import Payment
from app.web import error_page, messages, problem_text, render

log = logging.getLogger(__name__)


def three_ds(cs: CheckoutSession) -> dict[str, str]:
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


async def show(page: PageRequest) -> HTMLResponse:
    settings, lang = page.settings, page.lang
    view = await page_view.load(
        page.sessions, page.gateway, page.cs_id, pay_claim=settings.pay_claim
    )
    cs = view.cs
    if view.closed is not None:
        exc = view.closed
        # Back to the shop: its thank-you page when already paid, else its cart.
        back = None
        if cs is not None:
            back = hosted.back_to_shop(cs, succeeded=exc.status == 409)
        return error_page(settings, lang, exc.status, problem_text(lang, exc), back)
    assert cs is not None
    if view.live is not None:
        return result_page(page, cs, view.live)
    # With the shopper's "save this card" box ticked, 3-D Secure may need other values (a
    # registration on a customer the gateway knows): the page script switches to them.
    three_ds_save = None
    if view.save_registers_first is not None:
        three_ds_save = zero_three_ds(cs) if view.save_registers_first else three_ds(cs)
    return await card_form(
        page,
        cs,
        messages(lang),
        three_ds=zero_three_ds(cs) if view.register_first else three_ds(cs),
        three_ds_save=three_ds_save,
        offer_save_card=cs.offer_save_card,
        saved_cards=list(view.saved_cards),
        registration=False,
        saves_card=cs.save_card,
        pay_options=pay_options(cs, messages(lang)),
    )


async def probe(page: PageRequest) -> HTMLResponse:
    """The page check's card page (app/pagesec/probe.py): this page's form for an order of
    1,000 yen that exists nowhere (the session object is never saved)."""
    now = utcnow()
    cs = CheckoutSession(
        id=page.cs_id,
        status="open",
        kind=Kind.PAYMENT.value,
        job="AUTH",
        amount=1000,
        tax=0,
        shipping=0,
        attempts=0,
        save_card=False,
        offer_save_card=False,
        expires_at=now + timedelta(minutes=5),
        created_at=now,
        updated_at=now,
    )
    return await card_form(page, cs, messages(page.lang), three_ds=three_ds(cs), registration=False)


def pay_options(cs: CheckoutSession, t: dict[str, str]) -> list[tuple[str, str]]:
    """The payment-method select's (value, label) pairs, in the session's order; empty when
    the shop offers lump sum only (the page then sends md=10 without asking)."""
    offered = cs.payment_methods or ["10"]
    if offered == ["10"]:
        return []
    options: list[tuple[str, str]] = []
    for method in offered:
        if method == "10":
            options.append(("10", t["pay_option_lump"]))
        elif method == "80":
            options.append(("80", t["pay_option_revolving"]))
        else:
            for count in cs.installment_counts or []:
                label = t["pay_option_installments"].replace("{count}", str(count))
                options.append((f"61-{count}", label))
    return options


def redirect_for(cs: CheckoutSession, status: str) -> str | None:
    """Where the shopper goes next: the shop's success or cancel page."""
    if status not in ("succeeded", "failed"):
        return None
    return hosted.back_to_shop(cs, succeeded=status == "succeeded")


def _failure_message(page: PageRequest, code: str | None) -> str:
    lang = page.lang
    if not code:
        return messages(lang).get("result_failed", "The payment failed.")
    if code == tds.ABANDONED:  # ours, not the gateway's
        return messages(lang)["three_ds_abandoned"]
    info = page.gateway.describe_error(code)
    return info.message_ja if lang == "ja" else info.message_en


def result_url(page: PageRequest, payment: Payment) -> str:
    """A payment's result page: its own URL, to reload, bookmark or reach with Back."""
    return f"/checkout/{page.cs_id}/payments/{payment.id}?lang={page.lang}"


async def show_result(page: PageRequest, payment_id: str) -> HTMLResponse:
    """`GET /checkout/{id}/payments/{payment_id}`: where a form post's result is shown."""
    cs, payment = await page_view.with_payment(page.sessions, page.cs_id, payment_id)
    if cs is None or payment is None or payment.checkout_session_id != cs.id:
        return error_page(page.settings, page.lang, 404)
    # Not processed (maintenance and the like): "try later", as the post itself said.
    error = payment.error_code if service.page_status(payment) == "failed" else None
    later = error is not None and page.gateway.describe_error(error).http_status == 503
    return result_page(page, cs, payment, 503 if later else 200)


def _content(payment: Payment) -> dict[str, str | None] | None:
    if not (payment.content_id or payment.content_password):
        return None
    return {"id": payment.content_id, "password": payment.content_password}


def _other(lang: str) -> str:
    return "ja" if lang == "en" else "en"


def result_page(
    page: PageRequest, cs: CheckoutSession, payment: Payment, status_code: int = 200
) -> HTMLResponse:
    lang = page.lang
    t = messages(lang)
    status = service.page_status(payment)
    message = {
        "succeeded": t.get("result_succeeded", "Payment complete"),
        "pending": t.get("result_pending", "Waiting for the gateway"),
        "unknown": t.get("result_unknown", "We are confirming your payment"),
    }.get(status)
    if status == "failed":
        message = _failure_message(page, payment.error_code)
    retry = f"/checkout/{cs.id}?lang={lang}" if status == "failed" and cs.status == "open" else None
    # Pending at 3-D Secure: the page sends the shopper on (static/checkout/three_ds.js, and a
    # plain link without script); a reload or a second pay lands here too.
    three_ds_url = tds.waiting_url(payment)
    if three_ds_url is not None:
        message = t["three_ds_continue_message"]
    return render(
        page.settings,
        "result.html",
        status_code=status_code,
        scripts=page.result_scripts(three_ds=three_ds_url is not None),
        lang=lang,
        t=t,
        status=status,
        message=message,
        payment_id=payment.id,
        order_id=payment.order_id,
        # The payment's own total: a product payment's is the gateway's price.
        amount_total=payment.total,
        content=_content(payment) if status == "succeeded" else None,
        redirect_url=redirect_for(cs, status),
        status_url=f"/checkout/{cs.id}/status",
        retry_url=retry,
        three_ds_url=three_ds_url,
        # The payment's own page in the other language (it is where a browser's post lands).
        switch_lang_url=f"/checkout/{cs.id}/payments/{payment.id}?lang={_other(lang)}",
    )


def three_ds_info(settings: Settings, req: PayRequest, lang: str) -> service.ThreeDSInfo | None:
    """The pay's redirect 3-D Secure (SBPS with SBPS_THREE_DS): its info token and where
    the shopper comes back (PUBLIC_BASE_URL, in the page's language)."""
    if settings.gateway_provider != "sbps" or not settings.sbps_three_ds:
        return None
    if not (req.token and req.tds_info_token and req.tds_info_token_key):
        return None
    return service.ThreeDSInfo(
        req.tds_info_token, req.tds_info_token_key, settings.public_base_url, lang=lang
    )


def _pay_request(form: Form) -> PayRequest | None:
    """The token or saved card the form posted (None: neither, or not readable)."""
    # The page posts `card_num`; `num` (the gateway's name for it) is accepted too.
    card_num_raw = form.get("card_num") or form.get("num") or None
    # The payment-method select: "10", "80" or "61-<count>" (md, and pt with 61).
    md, _, pt = (form.get("pay_option") or "").partition("-")
    try:
        return PayRequest(
            token=form.get("tkn") or None,
            token_key=form.get("tkn_key") or None,
            tds_info_token=form.get("tds_tkn") or None,
            tds_info_token_key=form.get("tds_tkn_key") or None,
            card_num=int(card_num_raw) if card_num_raw else None,
            save_card=form.get("save_card") == "1",
            method=md or None,
            installments=int(pt) if pt.isdigit() else None,
        )
    except ValueError:
        return None


async def submit(page: PageRequest, form: Form) -> Response:
    settings, lang = page.settings, page.lang
    t = messages(lang)
    req = _pay_request(form)
    if req is None:
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, page.back)
    if service.lacks_token_key(settings.gateway_provider, req.token, req.token_key):
        # SBPS charges need the token's key too: refused before anything is claimed or sent.
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, page.back)
    tds_info = (req.tds_info_token, req.tds_info_token_key)
    if service.lacks_three_ds(
        settings.gateway_provider, settings.sbps_three_ds, req.token, tds_info
    ):
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, page.back)
    try:
        result = await service.pay(
            page.sessions,
            page.gateway,
            page.cs_id,
            token=req.token,
            token_key=req.token_key,
            card_num=req.card_num,
            result_mode=settings.gateway_result_mode,
            save_card=req.save_card,
            method=req.method,
            installments=req.installments,
            client_ip=page.client_ip,
            limits=velocity.Limits.of(settings),
            pay_claim=settings.pay_claim,
            kickback_expected=settings.kickback_expected,
            tds=three_ds_info(settings, req, lang),
        )
    except AppError as exc:
        return await _refused(page, exc)
    except Exception as exc:
        # The database went away after the gateway call: the payment is settled later from
        # the gateway's records (a new attempt on this session is refused until then).
        if not database_unavailable(exc):
            raise
        log.warning("checkout %s: database unavailable after the gateway call", page.cs_id)
        # Answered here, not redirected: the page it would go to needs the database, and
        # its "nothing was charged" would not be true. A re-post is refused (payment live).
        return error_page(settings, lang, 503, t["error_unavailable_message"])
    if page.navigates:
        return page.see_other(result_url(page, result.payment))
    # Maintenance (ER999) and the like: the page says "try later", and so does the status.
    error = result.result.error if result.result else None
    failed = service.page_status(result.payment) == "failed"
    code = 503 if failed and error is not None and error.http_status == 503 else 200
    return result_page(page, result.session, result.payment, code)


async def _refused(page: PageRequest, exc: AppError) -> Response:
    """The page for a pay that was refused (before anything was sent): the payment's result
    when another pay of this session got there first, else the error. A browser's post is
    redirected to the page, which shows the session's state (paid, expired, out of attempts)
    or the form again with the reason."""
    if exc.status == 409 and "payment_id" in exc.extra:
        cs, p = await page_view.with_payment(page.sessions, page.cs_id, exc.extra["payment_id"])
        if cs is not None and p is not None:
            if page.navigates:
                return page.see_other(result_url(page, p))
            return result_page(page, cs, p)
    if page.navigates and exc.status != 404:
        return page.back_with_problem(exc.extra.get("gateway_code") or exc.code)
    back = page.back if exc.status < 500 else None
    return error_page(page.settings, page.lang, exc.status, problem_text(page.lang, exc), back)


async def status(page: PageRequest) -> dict[str, Any]:
    cs, p = await page_view.with_payment(page.sessions, page.cs_id)
    assert cs is not None  # the table is consulted for existing pages only
    state = service.page_status(p) if p else "open"
    return {
        "status": state,
        "payment_id": p.id if p else None,
        "redirect_url": redirect_for(cs, state),
    }


HANDLER = PageHandler(show=show, submit=submit, status=status)
