"""The console's payment-page integrity page (`/ops/scripts`): the gateway scripts with their
current and approved hashes and last checks, the page header checks, the approvals with who
and why, and the approve form (a signed post, recorded with the signed-in key's label)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from app.config import Settings
from app.deps import SessionFactoryDep, SettingsDep
from app.ops.pages import _operator, _page, _signed_post, _to_login
from app.ops.signin import Operator
from app.ops.texts import texts
from app.pagesec import service
from app.pagesec.inventory import inventory
from app.web import lang_of

router = APIRouter(prefix="/ops", include_in_schema=False)


async def _show(
    request: Request,
    settings: Settings,
    sessions: SessionFactoryDep,
    lang: str,
    operator: Operator,
    *,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _page(
        request,
        settings,
        "scripts.html",
        lang,
        status_code=status_code,
        operator=operator,
        switch_path="/ops/scripts",
        rows=await service.scripts(sessions, settings),
        first_party=[s for s in inventory(settings) if s.party == "first"],
        approvals=await service.approvals(sessions, limit=50),
        checks=await service.recent_checks(sessions, limit=30),
        pages=await service.last_page_checks(sessions),
        page_alerts=await service.page_alerts(sessions, limit=20),
        fallback=await service.page_fallback(sessions, settings),
        on_change=settings.script_watch_on_change,
        approved=request.query_params.get("approved") if request.method == "GET" else None,
        problem=problem,
        idem=secrets.token_urlsafe(18),
    )


@router.get("/scripts", response_class=HTMLResponse)
async def scripts_page(
    request: Request, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    lang = lang_of(request)
    operator = await _operator(request, settings, sessions)
    if operator is None:
        return _to_login(request, lang)
    return await _show(request, settings, sessions, lang, operator)


@router.post("/scripts/{key}/approve")
async def approve(
    request: Request, key: str, settings: SettingsDep, sessions: SessionFactoryDep
) -> Response:
    signed = await _signed_post(request, settings, sessions)
    if isinstance(signed, Response):
        return signed
    operator, form, lang = signed.operator, signed.form, signed.lang

    async def handler() -> Response:
        try:
            await service.approve(
                sessions,
                settings,
                key,
                form.get("sha384", ""),
                by=operator.actor,
                reason=form.get("reason", ""),
            )
        except service.ApprovalRefused as exc:
            return await _show(
                request,
                settings,
                sessions,
                lang,
                operator,
                problem=texts(lang).get(f"script_refused_{exc.code}", str(exc)),
                status_code=422,
            )
        query = urlencode([("lang", lang), ("approved", key)])
        return RedirectResponse(f"/ops/scripts?{query}", status_code=303)

    payload = f"{key}\n{form.get('sha384', '')}\n{form.get('reason', '')}"
    return await signed.once(request, sessions, handler, payload=payload.encode())
