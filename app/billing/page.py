"""The billing-robo card page (`Kind.BILLING_CARD`): `GET /checkout/{id}` and its form post
(the PageHandler of app/checkout/pages.py's table). The page is the card-registration page:
CPToken.js, then 3-D Secure with am=tx=sf=0 and the payer's registered e-mail and phone
(digits only), then only the token is posted and the server calls credit_card_token."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import HTMLResponse

from app import velocity
from app.billing import service
from app.errors import AppError
from app.gateway.base import BillingCardResult, BillingRobo, Outcome
from app.hosted import service as hosted
from app.hosted.models import CheckoutSession
from app.hosted.pages import (
    Form,
    PageHandler,
    PageRequest,
    card_form,
    no_payment_status,
    zero_three_ds,
)
from app.hosted.service import ensure_payable
from app.web import card_result_page, error_page, messages, problem_text

_TEXTS: dict[str, dict[str, str]] = {
    "ja": {
        "register_title": "お支払い用カードの登録",
        "register_intro": (
            "ご請求のお支払いに使うクレジットカードを登録します。この操作で代金は請求されません。"
        ),
        "billing_code_label": "請求先コード",
        "register_done": "カードの登録が完了しました。",
        "billing_unknown": (
            "登録結果を確認できませんでした。カードが登録されている可能性があります。"
            "しばらくしてからお問い合わせください。"
        ),
        "billing_not_configured": "現在カードを登録できません。",
        "result_title_unknown": "登録結果を確認しています",
        "result_do_not_pay_again": "確認が取れるまで、カードの再登録はお控えください。",
    },
    "en": {
        "register_title": "Register a card for your invoices",
        "register_intro": (
            "Register the credit card that pays your invoices. Nothing is charged now."
        ),
        "billing_code_label": "Billing code",
        "register_done": "Your card has been registered.",
        "billing_unknown": (
            "We could not confirm the registration; the card may have been registered. "
            "Please contact us before trying again."
        ),
        "billing_not_configured": "Cards cannot be registered right now.",
        "result_title_unknown": "We are confirming the registration",
        "result_do_not_pay_again": "Please do not register the card again until this is confirmed.",
    },
}


def texts(lang: str) -> dict[str, str]:
    return {**messages(lang), **_TEXTS.get(lang, _TEXTS["ja"])}


async def show(page: PageRequest) -> HTMLResponse:
    settings, lang = page.settings, page.lang
    cs, target = await service.page_view(page.sessions, page.cs_id)
    if cs is None or target is None:
        return error_page(settings, lang, 404)
    if cs.status == "completed":
        return result(page, cs, None)
    try:
        ensure_payable(cs)
    except AppError as exc:
        return error_page(settings, lang, exc.status, problem_text(lang, exc), cs.cancel_url)
    # 3-D Secure with the payer's registered e-mail and phone, which the server also sends
    # (billing robo compares them with the payer's).
    return await card_form(page, cs, texts(lang), three_ds=zero_three_ds(cs), billing=target)


async def submit(page: PageRequest, form: Form) -> Response:
    settings, lang = page.settings, page.lang
    t = texts(lang)
    robo: BillingRobo | None = getattr(page.request.app.state, "billing_robo", None)
    if robo is None:
        return error_page(settings, lang, 503, t["billing_not_configured"], None)
    token = form.get("tkn") or None
    if not token:
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, page.back)
    try:
        registered = await service.register_from_page(
            page.sessions,
            robo,
            page.cs_id,
            token,
            client_ip=page.client_ip,
            limits=velocity.Limits.of(settings),
        )
    except AppError as exc:
        known = await hosted.find(page.sessions, page.cs_id)
        if known is not None and known.status == "completed":
            return page.see_other(page.back) if page.navigates else result(page, known, None)
        back = page.back if exc.status < 500 else None
        return error_page(settings, lang, exc.status, problem_text(lang, exc), back)
    cs = await hosted.find(page.sessions, page.cs_id)
    assert cs is not None
    if page.navigates and registered.result.outcome == Outcome.SUCCESS:
        # Post/redirect/get: the page, now registered, shows its result. A refusal is
        # answered here: its reason is billing robo's, which the page's gateway cannot name.
        return page.see_other(page.back)
    return _outcome_page(page, cs, registered.result)


def _outcome_page(
    page: PageRequest, cs: CheckoutSession, answer: BillingCardResult
) -> HTMLResponse:
    """The result page for billing robo's answer: registered, not known yet, or refused."""
    t = texts(page.lang)
    if answer.outcome == Outcome.SUCCESS:
        return result(page, cs, None)
    if answer.outcome == Outcome.UNKNOWN:
        return result(page, cs, t["billing_unknown"], status="unknown", code=202)
    info = answer.error
    if info is None:
        return result(page, cs, t["result_failed"], status="failed", code=502)
    message = info.message_ja if page.lang == "ja" else info.message_en
    code = info.http_status if info.http_status in (402, 422, 429, 503) else 502
    return result(page, cs, message, status="failed", code=code)


def result(
    page: PageRequest,
    cs: CheckoutSession,
    message: str | None,
    *,
    status: str = "succeeded",
    code: int = 200,
) -> HTMLResponse:
    lang = page.lang
    t = texts(lang)
    return card_result_page(
        page.settings,
        lang,
        t,
        status=status,
        message=message or t["register_done"],
        redirect_url=hosted.back_to_shop(cs, succeeded=status == "succeeded"),
        retry_url=f"/checkout/{cs.id}?lang={lang}"
        if status != "succeeded" and cs.status == "open"
        else None,
        scripts=page.result_scripts(),
        status_code=code,
    )


HANDLER = PageHandler(show=show, submit=submit, status=no_payment_status)
