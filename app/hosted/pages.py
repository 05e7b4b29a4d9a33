"""What a hosted page's kind must provide: its page, its form post and its status answer.

The table kind -> handler lives in the top page router (app/checkout/pages.py `PAGES`), not
here: app.hosted is low (payments imports it to complete a session) and may not import the
customers or billing packages whose handlers it would hold, while app.checkout may. A
static table there is checked by mypy (every Kind has a handler, see its test) and needs no
registration at start-up, so no request can meet a half-filled table."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.gateway.base import PaymentGateway
from app.hosted.models import CheckoutSession, Kind
from app.hosted.service import attempts_exhausted, back_to_shop
from app.pagesec.csp import page_scripts
from app.pagesec.inventory import PageKind
from app.pagesec.service import page_fallback
from app.security_headers import page_headers
from app.web import PageScripts, error_page, messages, render

# Which payment page of the script inventory each kind's card form is.
PAGE_KINDS: dict[Kind, PageKind] = {
    Kind.PAYMENT: "checkout",
    Kind.CARD_REGISTRATION: "card",
    Kind.BILLING_CARD: "billing_card",
}

# A refusal's code carried to the page a post redirects to: ours (snake_case) or the gateway's.
_PROBLEM_CODE = re.compile(r"[a-z_]{1,40}|[A-Z0-9]{2,12}")


@dataclass(frozen=True)
class PageRequest:
    """One browser request to a hosted page `cs_id`, in language `lang`."""

    request: Request
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    gateway: PaymentGateway
    cs_id: str
    lang: str

    @property
    def back(self) -> str:
        """The page itself, in its language (where an error page's "back" goes)."""
        return f"/checkout/{self.cs_id}?lang={self.lang}"

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None

    @property
    def navigates(self) -> bool:
        """A browser's own form post (fetch metadata says it navigates). It is answered with a
        redirect to a page of its own (post/redirect/get): Back and reload then never post the
        token again. A script's post (no fetch metadata) gets the page itself."""
        return self.request.headers.get("sec-fetch-mode") == "navigate"

    def result_scripts(self, *, three_ds: bool = False) -> PageScripts:
        """The result page's scripts and headers (a new nonce); `three_ds`: the page that
        sends the shopper on to SBPS's 3-D Secure page."""
        return page_scripts(self.settings, "tds_redirect" if three_ds else "result")

    def see_other(self, url: str) -> Response:
        return RedirectResponse(url, status_code=303, headers=page_headers(self.settings))

    def back_with_problem(self, code: str | None) -> Response:
        """After a refused post: the page again, saying why (nothing was charged)."""
        return self.see_other(f"{self.back}&problem={code or 'not_processed'}")

    def problem(self) -> str | None:
        """What a page reached by `back_with_problem` says, in its language."""
        code = self.request.query_params.get("problem") or ""
        if not _PROBLEM_CODE.fullmatch(code):
            return None
        t = messages(self.lang)
        if text := t.get(f"problem_{code}"):
            return text
        if not code.islower():  # the gateway's code (ER584, SBPS's 10121999): not ours
            info = self.gateway.describe_error(code)
            return info.message_ja if self.lang == "ja" else info.message_en
        return t["problem_not_processed"]


# The form post's fields (strings only), e.g. `tkn`, `card_num`, `save_card`, `lang`.
Form = dict[str, str]


@dataclass(frozen=True)
class PageHandler:
    show: Callable[[PageRequest], Awaitable[HTMLResponse]]
    submit: Callable[[PageRequest, Form], Awaitable[Response]]
    # The JSON the page script polls (`GET /checkout/{id}/status`).
    status: Callable[[PageRequest], Awaitable[dict[str, Any]]]


def zero_three_ds(cs: CheckoutSession) -> dict[str, str]:
    """3-D Secure for a card registration: am=tx=sf=0 and the page's e-mail and phone (which
    the server sends too: the gateway compares them)."""
    values = {"am": "0", "tx": "0", "sf": "0"}
    if cs.email:
        values["em"] = cs.email
    if cs.phone:
        values["pn"] = cs.phone
    return values


async def card_form(
    page: PageRequest,
    cs: CheckoutSession,
    t: dict[str, str],
    *,
    three_ds: dict[str, str],
    **context: Any,
) -> HTMLResponse:
    """The page's form (checkout.html: CPToken.js, 3-D Secure with `three_ds`, then the token
    is posted back here). `context`: what this kind shows beyond a bare card registration.
    A page out of attempts shows the limit instead, before the shopper types a card again.
    While a gateway script's hash is not approved (app/pagesec), the watcher's fallback:
    ROBOT PAYMENT's popup form instead of ours, or (SBPS) no card form."""
    other = "ja" if page.lang == "en" else "en"
    settings = page.settings
    if attempts_exhausted(cs, settings.velocity_max_attempts_per_session):
        return error_page(
            settings,
            page.lang,
            429,
            messages(page.lang)["problem_too_many_attempts"],
            back_to_shop(cs, succeeded=False),
        )
    defaults: dict[str, Any] = {
        "three_ds_save": None,
        "offer_save_card": False,
        "saved_cards": [],
        "registration": True,
        "registered_cards": [],
        "notice": None,
        "problem": page.problem(),
        "saves_card": False,
        "pay_options": [],
    }
    sbps = settings.gateway_provider == "sbps"
    tds2 = sbps and settings.sbps_three_ds and not context.get("registration", True)
    fallback = await page_fallback(page.sessions, settings)
    # SBPS has no popup card form of its own: its pages are always custom mode.
    mode: str = "custom" if sbps else settings.checkout_mode
    if fallback is not None:
        mode = fallback
    if sbps:
        # SBPS's token-script messages (app.main hands them in) and its notes for the page.
        extra = getattr(page.request.app.state, "page_messages", {}).get(page.lang, {})
        t = {**t, **extra}
        if not settings.sbps_three_ds:
            t["three_ds_note"] = t["sbps_no_3ds_note"]
    return render(
        settings,
        "checkout.html",
        # No card form while a gateway script is unapproved (SBPS's fallback): no script.
        scripts=page_scripts(settings, PAGE_KINDS[Kind(cs.kind)], none=mode == "unavailable"),
        lang=page.lang,
        t=t,
        session=cs,
        provider=settings.gateway_provider,
        # 3-D Secure 2.0's info token (SBPS_THREE_DS; its script is the inventory's, on the
        # payment page only: a card registration, MG02-00131-101, runs no 3-D Secure).
        sbps_tds2=tds2,
        sbps_merchant_id=settings.sbps_merchant_id if sbps else "",
        sbps_service_id=settings.sbps_service_id if sbps else "",
        mode=mode,
        aid=settings.gateway_aid,
        post_url=f"/checkout/{cs.id}",
        three_ds=three_ds,
        switch_lang_url=f"/checkout/{cs.id}?lang={other}",
        static_base="/static",
        # Nothing is charged in sandbox mode: the shopper (a tester) is told so.
        sandbox=settings.gateway_mode == "sandbox",
        back_url=back_to_shop(cs, succeeded=False),
        **{**defaults, **context},
    )


async def no_payment_status(page: PageRequest) -> dict[str, Any]:
    """A card page's status answer: it takes no payment, so there is none to wait for."""
    return {"status": "open", "payment_id": None, "redirect_url": None}
