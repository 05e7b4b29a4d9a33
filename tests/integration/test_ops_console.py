"""The ops console over real HTTP: sign-in with an ops key (merchant keys refused), CSRF on
every form, sessions that end, the payments list and a payment's actions going through the
same services as the API (the trail names the key's label)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.billing.models import BillingCardRegistration
from app.db import utcnow
from app.kickbacks.models import UNPROCESSED, Kickback
from app.ops.models import OpsSession
from app.payments.models import Payment
from app.reconcile.models import ReconcilePass
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.integration.test_customers import new_card, new_customer
from tests.support.fixtures import KICKBACK_SECRET, MERCHANT_KEY, OPS_KEY, AppFactory, RunningApp

pytestmark = pytest.mark.integration

SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}


async def sign_in(app: RunningApp, key: str = OPS_KEY) -> httpx.Response:
    return await app.client.post(
        "/ops/login", data={"api_key": key, "lang": "ja"}, headers=SAME_ORIGIN
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "the page carries its CSRF token"
    return found.group(1)


def idem_of(html: str) -> str:
    found = re.search(r'name="idem" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def paid(app: RunningApp, sim: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    cs = await new_session(app, order_id=order_id)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_only_an_ops_key_signs_in_and_the_pages_need_the_session(
    make_app: AppFactory,
) -> None:
    app = await make_app()
    for path in ("/ops", "/ops/payments", "/ops/payments/pay_x", "/ops/payments/pay_x/capture"):
        r = await app.client.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/ops/login"), path
    bad = await sign_in(app, "sk_wrong_key_0000000")
    assert bad.status_code == 401 and "API キーが正しくありません" in bad.text
    merchant = await sign_in(app, MERCHANT_KEY)
    assert merchant.status_code == 403 and "ops ロール" in merchant.text
    assert "set-cookie" not in merchant.headers
    ok = await sign_in(app)
    assert ok.status_code == 303 and ok.headers["location"] == "/ops?lang=ja"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ops" in cookie
    assert OPS_KEY not in cookie
    home = await app.client.get("/ops")
    assert home.status_code == 200 and "対応が必要なもの" in home.text
    csp = home.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    # Another site cannot post the sign-in (nor any console form).
    cross = await app.client.post(
        "/ops/login", data={"api_key": OPS_KEY}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403


async def test_a_session_ends_and_sign_out_needs_its_csrf_token(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    await sign_in(app)
    home = await app.client.get("/ops")
    refused = await app.client.post("/ops/logout", data={"lang": "ja"}, headers=SAME_ORIGIN)
    assert refused.status_code == 403 and "フォームの有効期限" in refused.text
    assert (await app.client.get("/ops")).status_code == 200, "still signed in"
    async with sessions() as session:
        await session.execute(update(OpsSession).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    ended = await app.client.get("/ops/payments")
    assert ended.status_code == 303 and ended.headers["location"] == "/ops/login?lang=ja&ended=1"
    login = await app.client.get(ended.headers["location"])
    assert "有効期限が切れました" in login.text
    # Signed in again, signing out ends it for good.
    await sign_in(app)
    home = await app.client.get("/ops")
    out = await app.client.post(
        "/ops/logout", data={"csrf": csrf_of(home.text), "lang": "ja"}, headers=SAME_ORIGIN
    )
    assert out.status_code == 303
    assert (await app.client.get("/ops")).status_code == 303


async def test_find_a_payment_by_order_id_and_capture_it_once(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    payment = await paid(app, sim, "ops1001")
    await paid(app, sim, "ops1002")
    await sign_in(app)
    found = await app.client.get("/ops/payments", params={"order_id": "ops1001"})
    assert found.status_code == 200
    assert found.text.count("data-payment=") == 1 and payment["id"] in found.text
    page = await app.client.get(f"/ops/payments/{payment['id']}")
    assert 'id="action-capture"' in page.text and "仮売上" in page.text
    confirm = await app.client.get(f"/ops/payments/{payment['id']}/capture")
    assert "¥1,580 の売上を確定します" in confirm.text
    form = {"csrf": csrf_of(confirm.text), "idem": idem_of(confirm.text), "lang": "ja"}
    no_csrf = await app.client.post(
        f"/ops/payments/{payment['id']}/capture",
        data={**form, "csrf": "forged"},
        headers=SAME_ORIGIN,
    )
    assert no_csrf.status_code == 403
    done = await app.client.post(
        f"/ops/payments/{payment['id']}/capture", data=form, headers=SAME_ORIGIN
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/ops/payments/{payment['id']}?lang=ja&done=capture"
    # The same confirmation posted again (a double click, a reload): done once, same answer.
    again = await app.client.post(
        f"/ops/payments/{payment['id']}/capture", data=form, headers=SAME_ORIGIN
    )
    assert again.status_code == 303 and again.headers.get("idempotent-replayed") == "true"
    assert again.headers.get("location") == done.headers["location"], "the replay goes there too"
    shown = await app.client.get(done.headers["location"])
    assert "売上を確定しました" in shown.text and "売上確定" in shown.text
    trail = (await app.ops.get(f"/v1/payments/{payment['id']}")).json()
    captures = [e for e in trail["events"] if e["to_status"] == "captured"]
    assert len(captures) == 1 and captures[0]["actor"].startswith("ops:")
    sales = [c for c in trail["gateway_calls"] if c["operation"] == "capture"]
    assert len(sales) == 1, "one SALES call"
    # A second capture from a fresh confirmation is refused with a readable reason.
    fresh = await app.client.get(f"/ops/payments/{payment['id']}/capture")
    refused = await app.client.post(
        f"/ops/payments/{payment['id']}/capture",
        data={"csrf": csrf_of(fresh.text), "idem": idem_of(fresh.text), "lang": "ja"},
        headers=SAME_ORIGIN,
    )
    assert refused.status_code == 409 and 'id="problem"' in refused.text


async def test_resolve_needs_a_reason_and_is_recorded_with_it(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    payment = await paid(app, sim, "ops2001")
    async with sessions() as session:
        await session.execute(
            update(Payment).where(Payment.id == payment["id"]).values(needs_attention=True)
        )
        await session.commit()
    await sign_in(app)
    home = await app.client.get("/ops")
    assert re.search(r'id="tile-attention".*?>1<', home.text, re.S)
    listed = await app.client.get("/ops/payments", params={"needs_attention": "1"})
    assert listed.text.count("data-payment=") == 1
    confirm = await app.client.get(f"/ops/payments/{payment['id']}/resolve")
    form = {
        "csrf": csrf_of(confirm.text),
        "idem": idem_of(confirm.text),
        "lang": "en",
        "status": "authorized",
        "reason": "",
    }
    short = await app.client.post(
        f"/ops/payments/{payment['id']}/resolve", data=form, headers=SAME_ORIGIN
    )
    assert short.status_code == 422 and "reason" in short.text
    form["reason"] = "checked the control panel: authorized"
    done = await app.client.post(
        f"/ops/payments/{payment['id']}/resolve", data=form, headers=SAME_ORIGIN
    )
    assert done.status_code == 303, done.text
    trail = (await app.ops.get(f"/v1/payments/{payment['id']}")).json()
    assert trail["needs_attention"] is False
    assert any(e["reason"] == form["reason"] for e in trail["events"])


async def test_the_list_exports_csv_without_formulas(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await paid(app, sim, "ops3001")
    await sign_in(app)
    r = await app.client.get("/ops/payments.csv", params={"order_id": "ops3001"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("id,created_at,status,order_id") and len(lines) == 2
    bad = await app.client.get("/ops/payments", params={"created_from": "2026-13-45"})
    assert bad.status_code == 422 and "YYYY-MM-DD" in bad.text


def _filled(path: str, payment_id: str) -> str:
    for name, value in (
        ("{payment_id}", payment_id),
        ("{action}", "cancel"),
        ("{kickback_id}", "1"),
        ("{event_id}", "evt_x"),
        ("{session_id}", "cs_x"),
        ("{uid}", "nobody"),
        ("{pass_id}", "1"),
        ("{key}", "cptoken"),
    ):
        path = path.replace(name, value)
    assert "{" not in path, f"a route parameter the walk does not know: {path}"
    return path


async def test_every_console_route_needs_a_session_and_every_form_its_csrf(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    """The security walk over the console: every route the app has under /ops, found from
    the app itself (a new page cannot slip by)."""
    app = await make_app()
    payment = await paid(app, sim, "ops4001")
    routes = [
        (method, _filled(str(c.path), payment["id"]))
        for c in iter_route_contexts(app.app.routes)  # included routers' routes too
        if isinstance(c.original_route, APIRoute) and str(c.path).startswith("/ops")
        for method in sorted((c.original_route.methods or set()) - {"HEAD"})
    ]
    assert len(routes) >= 8, routes
    public = {("GET", "/ops/login"), ("POST", "/ops/login")}
    for method, path in routes:
        r = await app.client.request(method, path, headers=SAME_ORIGIN)
        if (method, path) in public:
            assert r.status_code in (200, 401), (method, path, r.status_code)
        else:
            assert r.status_code == 303, (method, path, r.status_code)
            assert r.headers["location"].startswith("/ops/login"), (method, path)
    await sign_in(app)
    for method, path in routes:
        if method != "POST" or (method, path) in public:
            continue
        r = await app.client.post(path, data={"lang": "ja", "idem": "k1"}, headers=SAME_ORIGIN)
        assert r.status_code == 403, (path, r.status_code)
    trail = (await app.ops.get(f"/v1/payments/{payment['id']}")).json()
    assert trail["status"] == "authorized", "nothing was done without a CSRF token"


async def test_the_kickback_inbox_shows_an_unmatched_one_decoded(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    memo = "テスト".encode("cp932")
    query = f"gid=999999123&rst=1&ap=X1&cod=nomatch1&memo={quote_from_bytes(memo)}"
    r = await app.client.get(f"/kickback/{KICKBACK_SECRET}?{query}")
    assert r.status_code == 200
    async with sessions() as session:
        for _ in range(100):
            kb = (await session.execute(select(Kickback))).scalar_one()
            if kb.status not in UNPROCESSED:
                break
            await asyncio.sleep(0.05)
            session.expire_all()
    assert kb.status == "unmatched", kb.status
    await sign_in(app)
    inbox = await app.client.get("/ops/kickbacks", params={"status": "unmatched"})
    assert inbox.status_code == 200 and inbox.text.count("data-kickback=") == 1
    page = await app.client.get(f"/ops/kickbacks/{kb.id}")
    assert "該当なし" in page.text and "nomatch1" in page.text
    assert "テスト" in page.text, "the CP932 value is decoded"
    assert (await app.client.get("/ops/kickbacks/999999")).status_code == 404


async def test_an_event_is_sent_again_from_its_page(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    payment = await paid(app, sim, "ops5001")
    await sign_in(app)
    listed = await app.client.get("/ops/events", params={"object_id": payment["id"]})
    found = re.search(r'data-event="(evt_[^"]+)"', listed.text)
    assert found, listed.text
    page = await app.client.get(f"/ops/events/{found.group(1)}")
    assert page.status_code == 200 and payment["id"] in page.text
    form = {"csrf": csrf_of(page.text), "idem": idem_of(page.text), "lang": "ja"}
    r = await app.client.post(
        f"/ops/events/{found.group(1)}/redeliver", data=form, headers=SAME_ORIGIN
    )
    assert r.status_code == 303 and "queued=0" in r.headers["location"]
    shown = await app.client.get(r.headers["location"])
    assert "0 件の配信を予約しました" in shown.text


async def test_a_pass_run_from_the_console_settles_an_unknown_payment(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    cs = await new_session(app, order_id="ops6001")
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    (await sim.post("/_sandbox/faults", json={"garbage_after_charge": 1.0})).raise_for_status()
    try:
        r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    finally:
        await sim.post("/_sandbox/faults", json={})
    assert r.json()["status"] == "unknown", r.text
    await sign_in(app)
    page = await app.client.get("/ops/reconcile")
    assert re.search(r'id="open-count">1<', page.text)
    form = {"csrf": csrf_of(page.text), "idem": idem_of(page.text), "lang": "ja"}
    # A slow charges search: the pass is still running when its page first shows.
    await sim.post("/_sandbox/config", json={"search_slow_seconds": 1.5})
    try:
        started = await app.client.post("/ops/reconcile", data=form, headers=SAME_ORIGIN)
        assert started.status_code == 303
        where = started.headers["location"]
        assert re.fullmatch(r"/ops/reconcile/passes/\d+\?lang=ja", where), where
        # The same form posted again (a double click) is the same pass, not a second one.
        again = await app.client.post("/ops/reconcile", data=form, headers=SAME_ORIGIN)
        assert again.headers.get("location") == where
        running = await app.client.get(where)
        assert 'data-state="running"' in running.text and running.headers["refresh"] == "2"
        assert "実行中" in running.text and 'id="follow-stop"' in running.text
        still = await app.client.get(where + "&follow=0")
        assert "refresh" not in still.headers and 'id="follow-start"' in still.text
        for _ in range(100):
            shown = await app.client.get(where)
            if 'data-state="done"' in shown.text:
                break
            await asyncio.sleep(0.1)
    finally:
        await sim.post("/_sandbox/config", json={"search_slow_seconds": 0})
    assert 'data-state="done"' in shown.text and "refresh" not in shown.headers, shown.text
    assert re.search(r'data-figure="settled">1<', shown.text), shown.text
    assert re.search(r'data-figure="checked">1<', shown.text)
    payment_id = r.json()["id"]
    assert f'data-payment="{payment_id}" data-result="settled"' in shown.text
    assert "結果不明 → " in shown.text
    settled = (await app.ops.get(f"/v1/payments/{payment_id}")).json()
    assert settled["status"] == "authorized"
    # The API's pass joins the history too, with who ran it.
    api = await app.ops.post("/v1/reconciliations", json={})
    assert api.status_code == 200 and api.json()["pass_id"] > 0
    listed = await app.client.get("/ops/reconcile?lang=en")
    rows = dict(re.findall(r'<tr data-pass="(\d+)" data-state="(\w+)">', listed.text))
    console_pass = where.split("/")[-1].split("?")[0]
    # (The janitor's own passes may be listed too: it checks the unknown payment when due.)
    assert rows[console_pass] == rows[str(api.json()["pass_id"])] == "done", listed.text
    assert "Console" in listed.text and "API" in listed.text and "ops:" in listed.text
    # A pass whose process stopped (no heartbeat for a minute) shows as interrupted.
    pass_id = int(where.split("/")[-1].split("?")[0])
    async with sessions.begin() as session:
        await session.execute(
            update(ReconcilePass)
            .where(ReconcilePass.id == pass_id)
            .values(status="running", heartbeat_at=utcnow() - timedelta(minutes=2))
        )
    stopped = await app.client.get(where)
    assert 'data-state="interrupted"' in stopped.text and "refresh" not in stopped.headers
    assert (await app.client.get("/ops/reconcile/passes/999999")).status_code == 404
    assert (await app.client.get("/ops/reconcile/passes/abc")).status_code == 404


async def test_checkout_sessions_are_listed_with_their_payments(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    payment = await paid(app, sim, "ops7001")
    await new_session(app, order_id="ops7002")
    await sign_in(app)
    listed = await app.client.get("/ops/sessions")
    assert listed.status_code == 200 and listed.text.count("data-session=") == 2
    done = await app.client.get("/ops/sessions", params={"status": "completed"})
    assert done.text.count("data-session=") == 1
    cs_id = payment["checkout_session_id"]
    page = await app.client.get(f"/ops/sessions/{cs_id}")
    assert page.status_code == 200 and payment["id"] in page.text and "完了" in page.text
    assert (await app.client.get("/ops/sessions/cs_nope")).status_code == 404
    # Keyset pages: a cursor that is not ours is the first page, not an error.
    odd = await app.client.get("/ops/sessions", params={"cursor": "junk"})
    assert odd.status_code == 200 and odd.text.count("data-session=") == 2


async def test_customers_and_their_cards_are_shown_masked(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await new_customer(app, "opscust1")
    await new_card(app, sim, "opscust1")
    await new_customer(app, "opscust2")
    await sign_in(app)
    listed = await app.client.get("/ops/customers")
    assert listed.text.count("data-customer=") == 2
    one = await app.client.get("/ops/customers", params={"uid": "opscust1"})
    assert one.text.count("data-customer=") == 1
    page = await app.client.get("/ops/customers/opscust1")
    assert page.status_code == 200 and "•••• 1111" in page.text
    assert 'data-card="1"' in page.text
    assert (await app.client.get("/ops/customers/nobody")).status_code == 404


async def test_the_home_charts_count_the_windows_payments(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    await paid(app, sim, "ops8001")
    cs = await new_session(app, order_id="ops8002")
    declined = await make_token(sim, card=cards.CARD_DECLINE_G12, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": declined})
    assert r.status_code == 402, r.text
    code = r.json()["gateway_code"]
    await sign_in(app)
    for window, bars in (("24h", 24), ("7d", 7), ("30d", 30), ("junk", 24)):
        home = await app.client.get("/ops", params={"window": window})
        assert home.status_code == 200
        assert re.search(r'id="approval-rate">50\.0%<', home.text), window
        assert f">{code}</dt>" in home.text, "the decline's code is listed"
        rows = re.findall(r"<tr><td>\d{4}-\d\d-\d\d", home.text)
        assert bars <= len(rows) <= bars + 1, (window, len(rows))
        assert home.text.count('class="ops-bar ops-bar--succeeded"') == 1


async def test_an_unmatched_kickback_is_verified_against_the_gateway_read_only(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    payment = await paid(app, sim, "ops9001")
    gid = (await app.ops.get(f"/v1/payments/{payment['id']}")).json()["gid"]
    # A kickback for a real charge, but with an order number nobody has (cod): unmatched.
    await app.client.get(f"/kickback/{KICKBACK_SECRET}?gid=999999321&rst=1&ap=X1&cod=nobody9")
    async with sessions() as session:
        for _ in range(100):
            kb = (await session.execute(select(Kickback))).scalar_one()
            if kb.status not in UNPROCESSED:
                break
            await asyncio.sleep(0.05)
            session.expire_all()
    await sign_in(app)
    page = await app.client.get(f"/ops/kickbacks/{kb.id}")
    assert 'id="verify"' in page.text
    form = {"csrf": csrf_of(page.text), "lang": "ja"}
    none = await app.client.post(f"/ops/kickbacks/{kb.id}/verify", data=form, headers=SAME_ORIGIN)
    assert none.status_code == 200 and "決済システムにありません" in none.text
    # The same page for a kickback naming a real charge shows the gateway's row.
    async with sessions() as session:
        await session.execute(update(Kickback).where(Kickback.id == kb.id).values(gid=gid))
        await session.commit()
    found = await app.client.post(f"/ops/kickbacks/{kb.id}/verify", data=form, headers=SAME_ORIGIN)
    assert f">{gid}<" in found.text and "¥1,580" in found.text
    async with sessions() as session:
        again = await session.get(Kickback, kb.id)
        assert again is not None and again.status == kb.status, "verifying changes nothing"


async def test_webhook_endpoints_are_listed_without_their_secrets(make_app: AppFactory) -> None:
    app = await make_app()
    r = await app.merchant.post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/hook", "description": "shop"}
    )
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    await sign_in(app)
    page = await app.client.get("/ops/webhooks")
    assert page.status_code == 200 and "http://127.0.0.1:9/hook" in page.text
    assert secret not in page.text and "whsec_" not in page.text


async def test_billing_registrations_are_listed_by_status(
    make_app: AppFactory, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    async with sessions() as session:
        for i, status in enumerate(("succeeded", "failed")):
            session.add(
                BillingCardRegistration(
                    id=f"bcr_ops{i}",
                    billing_code=f"B00{i}",
                    status=status,
                    error_code="E1" if status == "failed" else None,
                    created_by="merchant:key_x",
                )
            )
        await session.commit()
    await sign_in(app)
    every = await app.client.get("/ops/billing")
    assert every.status_code == 200 and every.text.count("data-registration=") == 2
    failed = await app.client.get("/ops/billing", params={"status": "failed"})
    assert failed.text.count("data-registration=") == 1 and "B001" in failed.text


async def test_a_key_taken_out_of_the_settings_ends_its_console_sessions(
    make_app: AppFactory,
) -> None:
    app = await make_app()
    await sign_in(app)
    assert (await app.client.get("/ops")).status_code == 200
    # The operator rotates API_KEYS: the old ops key is gone (its label with it).
    app.app.state.api_keys = [k for k in app.app.state.api_keys if k.role != "ops"]
    r = await app.client.get("/ops")
    assert r.status_code == 303 and r.headers["location"].startswith("/ops/login")
