"""The ops console's pages (`/ops`): sign-in with an ops API key, what needs a person, the
payments list (the API's filters, keyset pages, CSV) and a payment with its trail and its
actions. Every state change is a form post carrying the session's CSRF token, confirmed on a
page of its own, and idempotent (the confirm page's key); each goes through the same service
functions as the JSON API, with the signed-in key's label as the actor."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ValidationError

from app.auth import principal_for
from app.config import Settings
from app.deps import GatewayDep, SessionFactoryDep, SettingsDep
from app.errors import AppError
from app.events import service as events
from app.events.outbox import EVENT_TYPES
from app.events.schemas import EventDetailOut
from app.gateway.base import ChargeRecord, SearchError
from app.hosted.models import SESSION_STATUSES
from app.idempotency import Bound, Resume, Resumed, run_idempotent
from app.kickbacks.models import KICKBACK_STATUSES, Kickback
from app.ops import charts, service, signin
from app.ops.signin import Operator
from app.ops.texts import texts
from app.pagesec import service as pagesec
from app.payments import operations
from app.payments.refresh import RefreshDep
from app.payments.schemas import PaymentOut, ReauthorizeRequest, ResolveRequest
from app.payments.service import PaymentFilter
from app.payments.states import Status
from app.reconcile import history, passes
from app.security_headers import console_headers
from app.web import cross_site_refusal, form_lang, keep_lang, lang_of, render
from app.web.pages import JST

router = APIRouter(prefix="/ops", include_in_schema=False)

COOKIE = "rp_ops"
STATUSES = ("pending", "authorized", "captured", "canceled", "failed", "unknown")
Action = Literal["capture", "cancel", "reauthorize", "resolve"]
ACTIONS: tuple[Action, ...] = ("capture", "cancel", "reauthorize", "resolve")
PAGE_SIZE = 50
_ACTION_FIELDS = ("amount", "tax", "shipping", "status", "reason", "gid")
CSV_MAX_ROWS = 10_000


# --- page machinery ----------------------------------------------------------------------------


def _page(
    request: Request,
    settings: Settings,
    name: str,
    lang: str,
    *,
    status_code: int = 200,
    operator: Operator | None = None,
    switch_path: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """`switch_path`: where the language switch goes when it is not this URL (a page drawn
    as a form post's answer whose URL only takes posts)."""
    other = "ja" if lang == "en" else "en"
    query = [(k, v) for k, v in request.query_params.multi_items() if k not in ("lang", "done")]
    if switch_path is None:
        # A post's answer: its URL may take posts only; the home takes a GET.
        switch_path = request.url.path if request.method == "GET" else "/ops"
    switch = switch_path + "?" + urlencode([*query, ("lang", other)])
    response = render(
        settings,
        f"ops/{name}",
        status_code=status_code,
        lang=lang,
        t=texts(lang),
        operator=operator,
        switch_lang_url=switch,
        **context,
    )
    response.headers.update(console_headers(settings))
    keep_lang(request, response, settings)
    return response


def _idle(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.ops_session_minutes)


async def _operator(
    request: Request, settings: Settings, sessions: SessionFactoryDep
) -> Operator | None:
    """Who is signed in, while their session lasts and their key is still an ops key of
    API_KEYS (a key taken out of the settings ends its console sessions at once)."""
    operator = await signin.current(sessions, request.cookies.get(COOKIE), idle=_idle(settings))
    keys = request.app.state.api_keys
    if operator is None or not any(k.label == operator.label and k.role == "ops" for k in keys):
        return None
    return operator


def _to_login(request: Request, lang: str) -> RedirectResponse:
    """No session: the sign-in page (saying it ended when the browser still had a cookie)."""
    ended = "&ended=1" if request.cookies.get(COOKIE) else ""
    response = RedirectResponse(f"/ops/login?lang={lang}{ended}", status_code=303)
    response.delete_cookie(COOKIE, path="/ops")
    return response


def _refused_form(request: Request, settings: Settings, lang: str) -> HTMLResponse:
    t = texts(lang)
    return _page(
        request,
        settings,
        "message.html",
        lang,
        status_code=403,
        title=t["refused"],
        message=t["csrf_refused"],
    )


@dataclass(frozen=True)
class _SignedPost:
    operator: Operator
    form: dict[str, str]
    lang: str

    async def once(
        self,
        request: Request,
        sessions: SessionFactoryDep,
        handler: Callable[[], Awaitable[Response]],
        *,
        payload: bytes = b"",
        resume: Resume | None = None,
    ) -> Response:
        """Runs the action at most once per form (its hidden `idem` key, required): a double
        click or a resent post replays the first answer. `payload` is the post's identity: the
        same key with other values is refused."""
        return await run_idempotent(
            request,
            sessions,
            principal=self.operator.actor,
            key=self.form.get("idem") or None,
            payload=payload,
            handler=handler,
            resume=resume,
            required=True,
        )


async def _signed_post(
    request: Request, settings: Settings, sessions: SessionFactoryDep
) -> _SignedPost | Response:
    """Every console form post's checks, in order: posted from our own site, by someone
    signed in, with their session's CSRF token. A Response: the refusal to answer with."""
    if (refused := cross_site_refusal(request, settings)) is not None:
        return refused
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    lang = form_lang(form)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    if not operator.csrf_ok(form.get("csrf")):
        return _refused_form(request, settings, lang)
    return _SignedPost(operator, form, lang)


def _not_found(
    request: Request, settings: Settings, lang: str, operator: Operator, what: str
) -> HTMLResponse:
    """The 404 page for `what` ("payment", "kickback"...): its texts are `<what>_title`
    and `not_found_<what>`."""
    t = texts(lang)
    return _page(
        request,
        settings,
        "message.html",
        lang,
        status_code=404,
        operator=operator,
        title=t[f"{what}_title"],
        message=t[f"not_found_{what}"],
    )


# --- sign-in -----------------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, settings: SettingsDep) -> HTMLResponse:
    lang = lang_of(request)
    ended = texts(lang)["login_expired"] if request.query_params.get("ended") else None
    return _page(request, settings, "login.html", lang, problem=ended)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, settings: SettingsDep, sessions: SessionFactoryDep) -> Response:
    if (refused := cross_site_refusal(request, settings)) is not None:
        return refused
    form = await request.form()
    lang = "en" if form.get("lang") == "en" else "ja"
    t = texts(lang)
    presented = form.get("api_key")
    key = str(presented).strip() if isinstance(presented, str) else ""
    principal = principal_for(request.app.state.api_keys, key) if key else None
    if principal is None or principal.role != "ops":
        problem, code = (
            (t["login_bad_key"], 401) if principal is None else (t["login_not_ops"], 403)
        )
        return _page(
            request,
            settings,
            "login.html",
            lang,
            status_code=code,
            problem=problem,
            switch_path="/ops/login",
        )
    token, _ = await signin.sign_in(sessions, principal.label, idle=_idle(settings))
    response = RedirectResponse(f"/ops?lang={lang}", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        path="/ops",
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
    )
    return response


@router.post("/logout")
async def logout(request: Request, settings: SettingsDep, sessions: SessionFactoryDep) -> Response:
    signed = await _signed_post(request, settings, sessions)
    if isinstance(signed, Response):
        return signed
    await signin.sign_out(sessions, request.cookies.get(COOKIE))
    response = RedirectResponse(f"/ops/login?lang={signed.lang}", status_code=303)
    response.delete_cookie(COOKIE, path="/ops")
    return response


# --- home ----------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
async def home(request: Request, settings: SettingsDep, sessions: SessionFactoryDep) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    overview = await service.overview(sessions)
    window = request.query_params.get("window") or "24h"
    window = window if window in charts.WINDOWS else "24h"
    return _page(
        request,
        settings,
        "home.html",
        lang,
        operator=operator,
        overview=overview,
        script_alerts=await pagesec.attention(sessions, settings),
        charts=await charts.read(sessions, window),
        windows=tuple(charts.WINDOWS),
        outcomes=charts.OUTCOMES,
    )


# --- payments ------------------------------------------------------------------------------------


class _Filters(BaseModel):
    """The list's filter form as the page shows it back."""

    status: str = ""
    order_id: str = ""
    customer_id: str = ""
    created_from: str = ""
    created_to: str = ""
    needs_attention: bool = False


def _jst_day(value: str) -> datetime:
    return datetime.combine(date.fromisoformat(value), time(), tzinfo=JST)


def _filters(request: Request) -> tuple[_Filters, PaymentFilter, bool]:
    """(the form's values, the service's filter, whether a date was unreadable)."""
    q = request.query_params
    shown = _Filters(
        status=q.get("status", "") if q.get("status", "") in STATUSES else "",
        order_id=(q.get("order_id") or "").strip()[:64],
        customer_id=(q.get("customer_id") or "").strip()[:50],
        created_from=(q.get("created_from") or "").strip()[:10],
        created_to=(q.get("created_to") or "").strip()[:10],
        needs_attention=q.get("needs_attention") in ("1", "true", "on"),
    )
    bad_date = False
    start = end = None
    try:
        start = _jst_day(shown.created_from) if shown.created_from else None
        # Until a day means through it (JST): before the next day starts.
        end = _jst_day(shown.created_to) + timedelta(days=1) if shown.created_to else None
    except ValueError:
        bad_date = True
    f = PaymentFilter(
        status=[shown.status] if shown.status else None,
        order_id=shown.order_id or None,
        customer_id=shown.customer_id or None,
        created_from=start,
        created_to=end,
        needs_attention=True if shown.needs_attention else None,
    )
    return shown, f, bad_date


@router.get("/payments", response_class=HTMLResponse)
async def payments_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    shown, f, bad_date = _filters(request)
    cursor = request.query_params.get("cursor") or None
    rows, next_cursor = await service.payments_page(
        sessions, f, cursor=cursor[:200] if cursor else None, limit=PAGE_SIZE
    )
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    return _page(
        request,
        settings,
        "payments.html",
        lang,
        status_code=422 if bad_date else 200,
        operator=operator,
        filters=shown,
        statuses=STATUSES,
        rows=rows,
        problem=texts(lang)["filter_bad_date"] if bad_date else None,
        next_url=(
            "/ops/payments?" + urlencode([*query, ("cursor", next_cursor)]) if next_cursor else None
        ),
        csv_url="/ops/payments.csv?" + urlencode(query),
    )


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is quoted (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/payments.csv")
async def payments_csv(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    _, f, _ = _filters(request)
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["id", "created_at", "status", "order_id", "total", "job", "customer_id", "gid"]
    writer.writerow(columns)
    cursor: str | None = None
    written = 0
    while written < CSV_MAX_ROWS:
        rows, cursor = await service.payments_page(sessions, f, cursor=cursor, limit=500)
        for p in rows:
            shown = PaymentOut.of(p).model_dump(mode="json")
            writer.writerow([_csv_cell(shown.get(c)) for c in columns])
        written += len(rows)
        if cursor is None:
            break
    # UTF-8 with a BOM: Excel in Japan opens it with the right encoding.
    body = "\ufeff" + out.getvalue()
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            **console_headers(settings),
            "Content-Disposition": 'attachment; filename="payments.csv"',
        },
    )


def _actions(p: PaymentOut) -> list[Action]:
    """The actions the page offers for `p` (the services still decide: a refusal is shown)."""
    offered: list[Action] = []
    if p.status == "authorized":
        offered.append("capture")
    if p.status in ("authorized", "captured"):
        offered += ["cancel", "reauthorize"]
    if p.status in ("pending", "unknown") or p.needs_attention:
        offered.append("resolve")
    return offered


@router.get("/payments/{payment_id}", response_class=HTMLResponse)
async def payment_page(
    request: Request, payment_id: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    t = texts(lang)
    detail = await service.payment_detail(sessions, payment_id[:80])
    if detail is None:
        return _not_found(request, settings, lang, operator, "payment")
    done = request.query_params.get("done")
    return _page(
        request,
        settings,
        "payment.html",
        lang,
        operator=operator,
        p=detail,
        actions=_actions(detail),
        notice=t.get(f"done_{done}") if done in ACTIONS else None,
    )


@router.get("/payments/{payment_id}/{action}", response_class=HTMLResponse)
async def confirm_page(
    request: Request,
    payment_id: str,
    action: Action,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    detail = await service.payment_detail(sessions, payment_id[:80])
    if detail is None:
        return _not_found(request, settings, lang, operator, "payment")
    return _confirm(request, settings, lang, operator, detail, action, {})


def _confirm(
    request: Request,
    settings: Settings,
    lang: str,
    operator: Operator,
    p: PaymentOut,
    action: Action,
    values: dict[str, str],
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The confirmation form: a fresh idempotency key each time it is drawn, so a double
    click or a reload of the post does the action once, and a new visit may do it again."""
    return _page(
        request,
        settings,
        "confirm.html",
        lang,
        status_code=status_code,
        operator=operator,
        switch_path=f"/ops/payments/{p.id}/{action}",
        p=p,
        action=action,
        values=values,
        idem=values.get("idem") or secrets.token_urlsafe(18),
        problem=problem,
        resolve_statuses=("authorized", "captured", "canceled", "failed"),
    )


def _problem_text(lang: str, exc: AppError) -> str:
    detail = exc.texts.get(lang) or exc.detail or exc.title
    fields = "; ".join(f"{e.field}: {e.message}" for e in exc.errors or [])
    return f"{detail} ({fields})" if fields else detail


def _validation_text(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)
    )


@router.post("/payments/{payment_id}/{action}", response_class=HTMLResponse)
async def act(
    request: Request,
    payment_id: str,
    action: Action,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    refresh: RefreshDep,
) -> Response:
    signed = await _signed_post(request, settings, sessions)
    if isinstance(signed, Response):
        return signed
    operator, form, lang = signed.operator, signed.form, signed.lang
    detail = await service.payment_detail(sessions, payment_id[:80])
    if detail is None:
        return _not_found(request, settings, lang, operator, "payment")
    body: BaseModel | None = None
    try:
        if action == "reauthorize":
            body = ReauthorizeRequest(
                amount=form.get("amount") or 0,
                tax=form.get("tax") or 0,
                shipping=form.get("shipping") or 0,
            )
        elif action == "resolve":
            body = ResolveRequest(
                status=form.get("status") or "",
                reason=form.get("reason") or "",
                gid=int(form["gid"]) if form.get("gid") else None,
            )
    except (ValidationError, ValueError) as exc:
        text = _validation_text(exc) if isinstance(exc, ValidationError) else str(exc)
        return _confirm(
            request, settings, lang, operator, detail, action, form, problem=text, status_code=422
        )

    def done(target: str) -> Response:
        return RedirectResponse(f"/ops/payments/{target}?lang={lang}&done={action}", 303)

    async def handler() -> Response:
        try:
            if action == "capture":
                p = await operations.capture(sessions, gateway, payment_id, actor=operator.actor)
            elif action == "cancel":
                p = await operations.cancel(sessions, gateway, payment_id, actor=operator.actor)
            elif isinstance(body, ReauthorizeRequest):
                p = await operations.reauthorize(
                    sessions,
                    gateway,
                    payment_id,
                    operations.ReauthRequest(
                        amount=body.amount, tax=body.tax, shipping=body.shipping
                    ),
                    actor=operator.actor,
                )
            else:
                assert isinstance(body, ResolveRequest)
                p = await operations.resolve(
                    sessions,
                    payment_id,
                    Status(body.status),
                    reason=body.reason,
                    gid=body.gid,
                    actor=operator.actor,
                )
        except AppError as exc:
            return _confirm(
                request,
                settings,
                lang,
                operator,
                detail,
                action,
                form,
                problem=_problem_text(lang, exc),
                status_code=exc.status,
            )
        return done(p.id)

    async def resume(bound: Bound) -> Resumed | None:
        # A re-authorization whose answer was lost: its new payment answers (settled from
        # the charges search first if still open); re_auth is never sent again.
        new = await refresh(sessions, gateway, bound.id)
        return None if new is None else Resumed(done(new.id))

    # The request's identity: the same key with other values is refused (422).
    payload = urlencode([(k, form.get(k, "")) for k in _ACTION_FIELDS])
    return await signed.once(
        request,
        sessions,
        handler,
        payload=payload.encode(),
        resume=resume if action == "reauthorize" else None,
    )


# --- kickbacks ---------------------------------------------------------------------------------


@router.get("/kickbacks", response_class=HTMLResponse)
async def kickbacks_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    status = request.query_params.get("status") or ""
    status = status if status in KICKBACK_STATUSES else ""
    before_raw = request.query_params.get("before") or ""
    before = int(before_raw) if before_raw.isdigit() and len(before_raw) < 19 else None
    rows, next_before = await service.kickbacks_page(
        sessions, status=status or None, before=before, limit=PAGE_SIZE
    )
    next_url = None
    if next_before is not None:
        next_url = "/ops/kickbacks?" + urlencode(
            [("status", status), ("before", str(next_before)), ("lang", lang)]
        )
    return _page(
        request,
        settings,
        "kickbacks.html",
        lang,
        operator=operator,
        rows=rows,
        status=status,
        statuses=KICKBACK_STATUSES,
        next_url=next_url,
    )


@router.get("/kickbacks/{kickback_id}", response_class=HTMLResponse)
async def kickback_page(
    request: Request, kickback_id: int, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    kb = await service.kickback(sessions, kickback_id) if 0 < kickback_id < 2**62 else None
    if kb is None:
        return _not_found(request, settings, lang, operator, "kickback")
    return _kickback(request, settings, lang, operator, kb)


def _kickback(
    request: Request,
    settings: Settings,
    lang: str,
    operator: Operator,
    kb: Kickback,
    *,
    verified: list[ChargeRecord] | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    return _page(
        request,
        settings,
        "kickback.html",
        lang,
        operator=operator,
        switch_path=f"/ops/kickbacks/{kb.id}",
        kb=kb,
        query=service.decoded_pairs(kb.raw_query),
        body=service.decoded_pairs(kb.raw_body) if kb.raw_body else [],
        verified=verified,
        problem=problem,
    )


@router.post("/kickbacks/{kickback_id}/verify", response_class=HTMLResponse)
async def verify_kickback(
    request: Request,
    kickback_id: int,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> Response:
    """What the gateway's charges search says of the charge a kickback names (read-only:
    nothing changes here; a kickback the search confirms is applied by the kickback loop)."""
    signed = await _signed_post(request, settings, sessions)
    if isinstance(signed, Response):
        return signed
    operator, lang = signed.operator, signed.lang
    kb = await service.kickback(sessions, kickback_id) if 0 < kickback_id < 2**62 else None
    t = texts(lang)
    if kb is None:
        return _not_found(request, settings, lang, operator, "kickback")
    if kb.gid is None:
        return _kickback(request, settings, lang, operator, kb, problem=t["verify_no_gid"])
    try:
        found = await gateway.search_charges(charge_id=kb.gid)
    except SearchError as exc:
        message = exc.error.message_ja if lang == "ja" else exc.error.message_en
        return _kickback(request, settings, lang, operator, kb, problem=message)
    return _kickback(request, settings, lang, operator, kb, verified=found)


# --- events --------------------------------------------------------------------------------------


@router.get("/events", response_class=HTMLResponse)
async def events_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    event_type = request.query_params.get("type") or ""
    event_type = event_type if event_type in EVENT_TYPES else ""
    object_id = (request.query_params.get("object_id") or "").strip()[:80]
    cursor = request.query_params.get("cursor") or ""
    try:
        before = events.decode_cursor(cursor) if cursor else None
    except ValueError:
        before = None
    rows, next_cursor = await events.list_events(
        sessions,
        events.EventFilter(
            type=event_type or None, object_id=object_id or None, before=before, limit=PAGE_SIZE
        ),
    )
    next_url = None
    if next_cursor:
        next_url = "/ops/events?" + urlencode(
            [
                ("type", event_type),
                ("object_id", object_id),
                ("cursor", next_cursor),
                ("lang", lang),
            ]
        )
    return _page(
        request,
        settings,
        "events.html",
        lang,
        operator=operator,
        rows=rows,
        event_type=event_type,
        object_id=object_id,
        types=EVENT_TYPES,
        next_url=next_url,
    )


async def _event_or_none(sessions: SessionFactoryDep, event_id: str) -> EventDetailOut | None:
    try:
        return await events.event_detail(sessions, event_id[:40])
    except AppError:
        return None


@router.get("/events/{event_id}", response_class=HTMLResponse)
async def event_page(
    request: Request, event_id: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    t = texts(lang)
    detail = await _event_or_none(sessions, event_id)
    if detail is None:
        return _not_found(request, settings, lang, operator, "event")
    queued = request.query_params.get("queued")
    return _page(
        request,
        settings,
        "event.html",
        lang,
        operator=operator,
        e=detail,
        idem=secrets.token_urlsafe(18),
        notice=t["done_redeliver"].replace("{count}", queued)
        if queued and queued.isdigit()
        else None,
    )


@router.post("/events/{event_id}/redeliver")
async def redeliver_event(
    request: Request, event_id: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    signed = await _signed_post(request, settings, sessions)
    if isinstance(signed, Response):
        return signed
    operator, lang = signed.operator, signed.lang

    async def handler() -> Response:
        try:
            queued = await events.redeliver(sessions, event_id[:40])
        except AppError as exc:
            t = texts(lang)
            return _page(
                request,
                settings,
                "message.html",
                lang,
                status_code=exc.status,
                operator=operator,
                title=t["refused"],
                message=_problem_text(lang, exc),
            )
        url = f"/ops/events/{event_id}?" + urlencode([("lang", lang), ("queued", str(queued))])
        return RedirectResponse(url, status_code=303)

    return await signed.once(request, sessions, handler)


# --- reconciliation ------------------------------------------------------------------------------

# While a pass runs its page reloads itself this often (no script: a Refresh header), unless
# the person turned that off (?follow=0, WCAG 2.2.1).
_FOLLOW_SECONDS = 2


@router.get("/reconcile", response_class=HTMLResponse)
async def reconcile_page(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    return _page(
        request,
        settings,
        "reconcile.html",
        lang,
        operator=operator,
        overview=await service.overview(sessions),
        passes=await history.recent(sessions),
        idem=secrets.token_urlsafe(18),
    )


@router.post("/reconcile")
async def reconcile_now(
    request: Request,
    settings: SettingsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
) -> Response:
    """Starts a pass (every open payment, then the orphan sweep) and shows its page, which
    follows its progress; the same form posted twice is the same pass."""
    signed = await _signed_post(request, settings, sessions)
    if isinstance(signed, Response):
        return signed
    operator, lang = signed.operator, signed.lang

    async def handler() -> Response:
        pass_id = await passes.start_in_background(
            sessions, gateway, settings, limit=500, trigger="console", actor=operator.actor
        )
        return RedirectResponse(f"/ops/reconcile/passes/{pass_id}?lang={lang}", status_code=303)

    return await signed.once(request, sessions, handler)


@router.get("/reconcile/passes/{pass_id}", response_class=HTMLResponse)
async def reconcile_pass_page(
    request: Request, pass_id: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    found = await history.get(sessions, int(pass_id)) if pass_id.isdigit() else None
    if found is None:
        return _not_found(request, settings, lang, operator, "pass")
    follow = found.running and request.query_params.get("follow") != "0"
    response = _page(
        request,
        settings,
        "reconcile_pass.html",
        lang,
        operator=operator,
        p=found,
        figures=history.FIGURES,
        follow=follow,
        follow_seconds=_FOLLOW_SECONDS,
    )
    if follow:
        response.headers["Refresh"] = str(_FOLLOW_SECONDS)
    return response


# --- checkout sessions -------------------------------------------------------------------------


@router.get("/sessions", response_class=HTMLResponse)
async def sessions_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    q = request.query_params
    status = q.get("status") if q.get("status") in SESSION_STATUSES else ""
    order_id = (q.get("order_id") or "").strip()[:64]
    cursor = (q.get("cursor") or "")[:120] or None
    rows, next_cursor = await service.sessions_page(
        sessions,
        status=status or None,
        order_id=order_id or None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    next_url = None
    if next_cursor:
        next_url = "/ops/sessions?" + urlencode(
            [
                ("status", status or ""),
                ("order_id", order_id),
                ("cursor", next_cursor),
                ("lang", lang),
            ]
        )
    return _page(
        request,
        settings,
        "sessions.html",
        lang,
        operator=operator,
        rows=rows,
        status=status,
        order_id=order_id,
        statuses=SESSION_STATUSES,
        next_url=next_url,
    )


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
async def session_page(
    request: Request, session_id: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    cs, payments = await service.session_detail(sessions, session_id[:40])
    if cs is None:
        return _not_found(request, settings, lang, operator, "session")
    return _page(
        request, settings, "session.html", lang, operator=operator, cs=cs, payments=payments
    )


# --- customers and cards -------------------------------------------------------------------------


@router.get("/customers", response_class=HTMLResponse)
async def customers_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    q = request.query_params
    uid = (q.get("uid") or "").strip()[:50]
    email = (q.get("email") or "").strip()[:100]
    cursor = (q.get("cursor") or "")[:120] or None
    rows, next_cursor = await service.customers_page(
        sessions, uid=uid or None, email=email or None, cursor=cursor, limit=PAGE_SIZE
    )
    next_url = None
    if next_cursor:
        next_url = "/ops/customers?" + urlencode(
            [("uid", uid), ("email", email), ("cursor", next_cursor), ("lang", lang)]
        )
    return _page(
        request,
        settings,
        "customers.html",
        lang,
        operator=operator,
        rows=rows,
        uid=uid,
        email=email,
        next_url=next_url,
    )


@router.get("/customers/{uid}", response_class=HTMLResponse)
async def customer_page(
    request: Request, uid: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    view = await service.customer_detail(sessions, uid[:50])
    if view is None:
        return _not_found(request, settings, lang, operator, "customer")
    return _page(request, settings, "customer.html", lang, operator=operator, view=view)


# --- webhook endpoints ---------------------------------------------------------------------------


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    """The shop's endpoints (never their secrets) and whether they are failing."""
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    endpoints = await events.list_endpoints(sessions)
    return _page(request, settings, "webhooks.html", lang, operator=operator, rows=endpoints)


# --- payment-page integrity ----------------------------------------------------------------------


@router.get("/csp-reports", response_class=HTMLResponse)
async def csp_reports_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    """What the shoppers' browsers blocked on the payment pages (app/pagesec), deduplicated."""
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    cursor = (request.query_params.get("cursor") or "")[:120] or None
    rows, next_cursor = await service.csp_reports_page(sessions, cursor=cursor, limit=PAGE_SIZE)
    next_url = None
    if next_cursor:
        next_url = "/ops/csp-reports?" + urlencode([("cursor", next_cursor), ("lang", lang)])
    return _page(
        request, settings, "csp_reports.html", lang, operator=operator, rows=rows, next_url=next_url
    )


# --- billing-robo card registrations -------------------------------------------------------------

REGISTRATION_STATUSES = ("processing", "succeeded", "failed", "unknown")


@router.get("/billing", response_class=HTMLResponse)
async def registrations_list(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    q = request.query_params
    status = q.get("status") if q.get("status") in REGISTRATION_STATUSES else ""
    code = (q.get("billing_code") or "").strip()[:20]
    cursor = (q.get("cursor") or "")[:120] or None
    rows, next_cursor = await service.registrations_page(
        sessions,
        status=status or None,
        billing_code=code or None,
        cursor=cursor,
        limit=PAGE_SIZE,
    )
    next_url = None
    if next_cursor:
        next_url = "/ops/billing?" + urlencode(
            [
                ("status", status or ""),
                ("billing_code", code),
                ("cursor", next_cursor),
                ("lang", lang),
            ]
        )
    return _page(
        request,
        settings,
        "billing.html",
        lang,
        operator=operator,
        rows=rows,
        status=status,
        billing_code=code,
        statuses=REGISTRATION_STATUSES,
        next_url=next_url,
    )
