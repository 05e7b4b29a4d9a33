"""The 3-D Secure page behind TA02-00101-101's redirect_url. The magic card decides: frictionless
and fail cards go straight back (303) to ok_return_url / ng_return_url; the challenge card shows
a one-time-code form (code 1234) first. Back with `res_tds_authentication_id` and `res_result`
(OK/NG) added to the return URL's query: hints only, ST01-00118-101 is what counts. Reloading a
finished page sends the shopper back again, with the same result.

No script and no inline style: the page works under `default-src 'none'`."""

from __future__ import annotations

import html
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.sandbox.sbps import cards
from app.sandbox.sbps.api import state_of
from app.sandbox.sbps.models import TdsAuthentication

router = APIRouter(tags=["SBPS 3-D Secure page"])
PAGE = "/tds2/authenticate/{auth_id}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _csp(auth: TdsAuthentication) -> str:
    # form-action covers where the answer redirects to too (browsers check redirects after a
    # form post against it).
    targets = " ".join(sorted({_origin(auth.ok_return_url), _origin(auth.ng_return_url)}))
    return (
        f"default-src 'none'; form-action 'self' {targets}; frame-ancestors 'none'; base-uri 'none'"
    )


def back(auth: TdsAuthentication) -> Response:
    ok = auth.status == "authenticated"
    url = auth.ok_return_url if ok else auth.ng_return_url
    parts = urlsplit(url)
    extra = urlencode({"res_tds_authentication_id": auth.id, "res_result": "OK" if ok else "NG"})
    query = f"{parts.query}&{extra}" if parts.query else extra
    target = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def _page(auth: TdsAuthentication, message: str = "") -> Response:
    amount = f"{auth.order.amount:,}"
    note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    body = f"""<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><title>3Dセキュア認証 (SBPS sandbox)</title></head>
<body><main>
<h1>本人認証 (3-D Secure)</h1>
<p>カード {html.escape(auth.card.masked)} / ご利用金額 {amount}円</p>
<p>SANDBOX: ワンタイムパスワード「{cards.CHALLENGE_CODE}」を入力してください</p>
{note}<form method="post" action="">
<label for="code">ワンタイムパスワード</label>
<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" required>
<button type="submit" name="action" value="complete">認証する</button>
<button type="submit" name="action" value="cancel" formnovalidate>キャンセル</button>
</form></main></body></html>"""
    headers = {"Content-Security-Policy": _csp(auth), "Cache-Control": "no-store"}
    return HTMLResponse(body, headers=headers)


def _unknown() -> Response:
    body = "<!DOCTYPE html><html lang=ja><meta charset=utf-8><title>SBPS</title><p>不明な認証です"
    csp = {"Content-Security-Policy": "default-src 'none'"}
    return HTMLResponse(body, status_code=404, headers=csp)


@router.get(PAGE)
async def authenticate(request: Request, auth_id: str) -> Response:
    sim = state_of(request)
    async with sim.lock:
        auth = sim.tds.get(auth_id)
        if auth is None:
            return _unknown()
        if auth.status == "pending":
            mode = cards.lookup(auth.card.number).three_ds
            if mode == "frictionless":
                auth.status = "authenticated"
            else:
                auth.status = "failed" if mode == "fail" else "challenge"
        if auth.status == "challenge":
            return _page(auth)
        return back(auth)


@router.post(PAGE)
async def challenge(
    request: Request, auth_id: str, action: str = Form("complete"), code: str = Form("")
) -> Response:
    sim = state_of(request)
    async with sim.lock:
        auth = sim.tds.get(auth_id)
        if auth is None:
            return _unknown()
        if auth.status == "challenge":
            if action == "cancel":
                auth.status = "canceled"
            else:
                auth.status = "authenticated" if code.strip() == cards.CHALLENGE_CODE else "failed"
        return back(auth)
