"""The billing-robo card page: `GET /checkout/{id}` and its form post for a `billing_card`
session (the checkout router hands those over). The page is the card-registration page:
CPToken.js, then 3-D Secure with am=tx=sf=0 and the payer's registered e-mail and phone
(digits only), then only the token is posted and the server calls credit_card_token."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import velocity
from app.billing import service
from app.billing.models import BillingCardSession
from app.config import Settings
from app.errors import AppError
from app.gateway.base import BillingRobo, Outcome
from app.hosted.models import CheckoutSession
from app.hosted.service import ensure_payable
from app.web import card_result_page, error_page, messages, render

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


def three_ds(cs: CheckoutSession) -> dict[str, str]:
    """3-D Secure for billing robo: am=tx=sf=0 and the payer's registered e-mail and phone,
    which the server also sends (billing robo compares them with the payer's)."""
    values = {"am": "0", "tx": "0", "sf": "0"}
    if cs.email:
        values["em"] = cs.email
    if cs.phone:
        values["pn"] = cs.phone
    return values


async def show(
    request: Request, settings: Settings, session: AsyncSession, cs_id: str, lang: str
) -> HTMLResponse:
    t = texts(lang)
    cs = await session.get(CheckoutSession, cs_id)
    target = await session.get(BillingCardSession, cs_id)
    if cs is None or target is None:
        return error_page(settings, lang, 404, "This page does not exist.")
    if cs.status == "completed":
        return result(settings, lang, cs, None)
    try:
        ensure_payable(cs)
    except AppError as exc:
        return error_page(settings, lang, exc.status, exc.detail or exc.title, cs.cancel_url)
    other = "ja" if lang == "en" else "en"
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
        three_ds=three_ds(cs),
        three_ds_save=None,
        offer_save_card=False,
        saved_cards=[],
        registration=True,
        billing=target,
        registered_cards=[],
        notice=None,
        saves_card=False,
        switch_lang_url=f"/checkout/{cs.id}?lang={other}",
        static_base="/static",
    )


async def submit(
    request: Request,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    cs_id: str,
    token: str | None,
    lang: str,
) -> HTMLResponse:
    t = texts(lang)
    back = f"/checkout/{cs_id}?lang={lang}"
    robo: BillingRobo | None = getattr(request.app.state, "billing_robo", None)
    if robo is None:
        return error_page(settings, lang, 503, t["billing_not_configured"], None)
    if not token:
        message = t.get("error_no_token", "No card token was received; please try again.")
        return error_page(settings, lang, 422, message, back)
    try:
        registered = await service.register_from_page(
            sessions,
            robo,
            cs_id,
            token,
            client_ip=request.client.host if request.client else None,
            limits=velocity.Limits.of(settings),
        )
    except AppError as exc:
        async with sessions() as session:
            known = await session.get(CheckoutSession, cs_id)
        if known is not None and known.status == "completed":
            return result(settings, lang, known, None)
        return error_page(
            settings, lang, exc.status, exc.detail or exc.title, back if exc.status < 500 else None
        )
    async with sessions() as session:
        cs = await session.get(CheckoutSession, cs_id)
    assert cs is not None
    outcome = registered.result.outcome
    if outcome == Outcome.SUCCESS:
        return result(settings, lang, cs, None)
    if outcome == Outcome.UNKNOWN:
        return result(settings, lang, cs, t["billing_unknown"], status="unknown", code=202)
    info = registered.result.error
    message = (info.message_ja if lang == "ja" else info.message_en) if info else t["result_failed"]
    code = info.http_status if info and info.http_status in (402, 422, 429, 503) else 502
    return result(settings, lang, cs, message, status="failed", code=code)


def result(
    settings: Settings,
    lang: str,
    cs: CheckoutSession,
    message: str | None,
    *,
    status: str = "succeeded",
    code: int = 200,
) -> HTMLResponse:
    return card_result_page(
        settings,
        lang,
        texts(lang),
        status=status,
        message=message or texts(lang)["register_done"],
        redirect_url=cs.success_url if status == "succeeded" else cs.cancel_url,
        retry_url=f"/checkout/{cs.id}?lang={lang}"
        if status != "succeeded" and cs.status == "open"
        else None,
        status_code=code,
    )
