"""Payment-page integrity (PCI DSS 6.4.3 / 11.6.1): the script watcher against the simulator
process over HTTP, the page header check through a proxy that alters our headers, the console,
the CLI and the evidence report, on real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings
from app.events.models import Event
from app.hosted.models import CheckoutSession
from app.pagesec import headercheck, probe, report, service, watcher
from app.pagesec.models import CspReport, PageCheck, ScriptApproval, ScriptCheck, ScriptState
from tests.integration.test_checkout import new_session
from tests.integration.test_cli import run_cli
from tests.integration.test_ops_console import SAME_ORIGIN, csrf_of, sign_in
from tests.integration.test_sbps_checkout import SESSION as SBPS_SESSION
from tests.support import sbps
from tests.support.fixtures import MERCHANT_KEY, OPS_KEY, AppFactory, RunningApp
from tests.support.pg import free_port

pytestmark = pytest.mark.integration

TAMPERED = "\n/* skimmer */ document.addEventListener('input', () => {});\n"


def changes(key: str) -> float:
    return REGISTRY.get_sample_value("rp_script_changes_total", {"key": key}) or 0.0


async def run(app: RunningApp, *, pages: bool = False) -> watcher.PassResult:
    """One watcher pass as the app's background loop runs it (its own egress client)."""
    sessions = app.app.state.sessions
    settings = app.settings

    async def check() -> list[watcher.PageResult]:
        return await headercheck.check_pages(sessions, app.app.state.page_http, settings)

    return await watcher.run_pass(
        sessions, app.app.state.script_http, settings, pages=check if pages else None
    )


def by_key(done: watcher.PassResult) -> dict[str, watcher.ScriptResult]:
    return {r.key: r for r in done.scripts}


async def card_page(app: RunningApp, cs_id: str) -> str:
    r = await app.client.get(f"/checkout/{cs_id}")
    assert r.status_code == 200, r.text
    return r.text


def cli_env(app: RunningApp, db_url: str, simulator_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": db_url,
        "GATEWAY_MODE": "sandbox",
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "PUBLIC_BASE_URL": app.url,
        "API_KEYS": f"{MERCHANT_KEY}:merchant,{OPS_KEY}:ops",
    }


async def test_a_changed_vendor_script_alerts_falls_back_and_an_approval_restores_it(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    simulator_url: str,
) -> None:
    app = await make_app()
    cs = await new_session(app)
    # First sight in sandbox: approved as "sandbox: first seen", nothing alerts.
    first = await run(app)
    assert first.ran and {r.status for r in first.scripts} == {"ok"}
    assert set(by_key(first)) == {"cptoken", "emv3ds_adapter"}
    assert first.alerts == 0
    async with sessions() as session:
        seen = (await session.execute(select(ScriptApproval))).scalars().all()
    assert {a.key for a in seen} == {"cptoken", "emv3ds_adapter"}
    assert {a.reason for a in seen} == {watcher.SANDBOX_FIRST_SEEN}
    assert 'data-mode="custom"' in await card_page(app, cs["id"])

    # The vendor's CPToken.js changes: one pass alerts.
    before = changes("cptoken")
    (await sim.post("/_sandbox/scripts/CPToken.js", json={"append": TAMPERED})).raise_for_status()
    done = await run(app)
    cptoken = by_key(done)["cptoken"]
    assert cptoken.status == "changed" and cptoken.alerted
    assert cptoken.sha384 != cptoken.approved
    assert by_key(done)["emv3ds_adapter"].status == "ok"
    assert changes("cptoken") == before + 1
    async with sessions() as session:
        event = (
            await session.execute(select(Event).where(Event.type == "script.changed"))
        ).scalar_one()
    assert event.object_type == "page.script" and event.object_id == "cptoken"
    assert event.data["current_sha384"] == cptoken.sha384
    # The same change seen again is not a new alert.
    again = await run(app)
    assert by_key(again)["cptoken"].status == "changed" and not by_key(again)["cptoken"].alerted
    assert changes("cptoken") == before + 1

    metrics = (await app.client.get("/metrics")).text
    assert re.search(r"^rp_db_scripts_unapproved 1\.0$", metrics, re.M), metrics
    age = re.search(r"^rp_db_script_watch_age_seconds (\S+)$", metrics, re.M)
    assert age and 0 < float(age.group(1)) < 60
    # The card page falls back to the gateway's popup form: none of our card fields.
    page = await card_page(app, cs["id"])
    assert 'data-mode="popup"' in page and 'id="cn"' not in page
    assert 'id="CARD_INPUT_FORM"' in page

    # The console shows it: the home tile and /ops/scripts.
    assert (await sign_in(app)).status_code == 303
    home = (await app.client.get("/ops")).text
    tile = re.search(
        r'<li class="ops-tile( ops-tile--alert)?" id="tile-scripts">.*?</li>', home, re.S
    )
    assert tile and tile.group(1) and '<span class="ops-tile__count">1</span>' in tile.group(0)
    listing = (await app.client.get("/ops/scripts")).text
    assert 'data-key="cptoken" data-status="changed"' in listing
    assert 'data-fallback="popup"' in listing
    assert 'data-key="checkout_js"' in listing  # our own scripts are listed too
    assert cptoken.sha384 and cptoken.sha384 in listing

    # Approved in the console (a signed post, recorded with the key's label).
    form = {
        "csrf": csrf_of(listing),
        "idem": re.search(r'name="idem" value="([^"]+-cptoken)"', listing).group(1),  # type: ignore[union-attr]
        "lang": "ja",
        "sha384": cptoken.sha384,
        "reason": "",
    }
    refused = await app.client.post("/ops/scripts/cptoken/approve", data=form, headers=SAME_ORIGIN)
    assert refused.status_code == 422 and "承認の理由を入力してください" in refused.text
    forged = await app.client.post(
        "/ops/scripts/cptoken/approve",
        data={**form, "csrf": "forged", "reason": "x", "idem": "other-1"},
        headers=SAME_ORIGIN,
    )
    assert forged.status_code == 403
    fresh = (await app.client.get("/ops/scripts")).text
    form = {
        **form,
        "csrf": csrf_of(fresh),
        "idem": re.search(r'name="idem" value="([^"]+-cptoken)"', fresh).group(1),  # type: ignore[union-attr]
        "reason": "vendor release notes 2026-12 checked; diff reviewed",
    }
    ok = await app.client.post("/ops/scripts/cptoken/approve", data=form, headers=SAME_ORIGIN)
    assert ok.status_code == 303 and "approved=cptoken" in ok.headers["location"]
    async with sessions() as session:
        state = await session.get(ScriptState, "cptoken")
        assert state is not None and state.status == "ok"
        assert state.approved_sha384 == cptoken.sha384
        latest = (
            await session.execute(
                select(ScriptApproval)
                .where(ScriptApproval.key == "cptoken")
                .order_by(ScriptApproval.id.desc())
                .limit(1)
            )
        ).scalar_one()
    label = app.app.state.api_keys[1].label
    assert latest.approved_by == f"ops:{label}" and latest.reason.startswith("vendor release")
    assert 'data-mode="custom"' in await card_page(app, cs["id"])
    assert by_key(await run(app))["cptoken"].status == "ok"
    home = (await app.client.get("/ops")).text
    assert 'class="ops-tile" id="tile-scripts"' in home


# Three CLI processes (each imports the app): more than the default limit on a busy machine.
@pytest.mark.timeout(400)
async def test_the_cli_lists_approves_and_checks(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    simulator_url: str,
) -> None:
    app = await make_app()
    cs = await new_session(app)
    assert (await run(app)).alerts == 0
    # A change, approved with the CLI.
    (
        await sim.post("/_sandbox/scripts/CPToken.js", json={"append": TAMPERED * 2})
    ).raise_for_status()
    second = by_key(await run(app))["cptoken"]
    assert second.status == "changed" and second.alerted
    assert 'data-mode="popup"' in await card_page(app, cs["id"])
    env = cli_env(app, db_url, simulator_url)
    code, out = await run_cli("scripts", "list", **env)
    assert code == 0 and "cptoken" in out and "changed" in out and str(second.sha384) in out
    code, out = await run_cli("scripts", "approve", "cptoken", "not-a-hash", "--reason", "x", **env)
    assert code == 1 and "SHA-384" in out
    code, out = await run_cli(
        "scripts",
        "approve",
        "cptoken",
        str(second.sha384),
        "--reason",
        "ticket OPS-12",
        "--by",
        "alice",
        **env,
    )
    assert code == 0, out
    assert 'data-mode="custom"' in await card_page(app, cs["id"])
    code, out = await run_cli("scripts", "check", **env)
    assert code == 0, out
    assert re.search(r"cptoken\s+ok", out) and re.search(r"page checkout\s+ok", out)
    async with sessions() as session:
        by = (
            await session.execute(
                select(ScriptApproval.approved_by, ScriptApproval.reason)
                .where(ScriptApproval.key == "cptoken")
                .order_by(ScriptApproval.id.desc())
                .limit(1)
            )
        ).one()
    assert tuple(by) == ("alice", "ticket OPS-12")


async def test_live_mode_records_a_first_seen_script_as_unapproved(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """No auto-approval outside sandbox: the first sight alerts and the fallback holds until a
    person approves (the watcher's rule is read with the live flag; the app stays sandbox)."""
    app = await make_app()
    live = app.settings.model_copy(update={"gateway_mode": "live"})
    done = await watcher.check_scripts(sessions, app.app.state.script_http, live)
    assert {r.status for r in done} == {"unapproved"} and all(r.alerted for r in done)
    cs = await new_session(app)
    assert 'data-mode="popup"' in await card_page(app, cs["id"])
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(ScriptApproval)) == 0


async def test_replicas_run_one_pass_at_a_time_and_once_per_interval(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    one, two = await make_app(), await make_app()
    every = timedelta(hours=1)
    results = await asyncio.gather(
        *(
            watcher.run_pass(a.app.state.sessions, a.app.state.script_http, a.settings, every=every)
            for a in (one, two, one, two)
        )
    )
    assert sum(r.ran for r in results) == 1
    async with sessions() as session:
        checks = await session.scalar(select(func.count()).select_from(ScriptCheck))
    assert checks == 2  # cptoken and emv3ds_adapter, once
    # Not due again within the interval; the CLI's pass (no interval) runs.
    assert not (
        await watcher.run_pass(sessions, one.app.state.script_http, one.settings, every=every)
    ).ran
    assert (await run(two)).ran


async def test_a_fetch_failure_is_recorded_without_an_alert_or_a_fallback(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = await make_app()
    assert (await run(app)).alerts == 0
    before = changes("cptoken")
    (await sim.post("/_sandbox/scripts/CPToken.js", json={"status": 503})).raise_for_status()
    for n in (1, 2, 3):
        done = await run(app)
        failed = by_key(done)["cptoken"]
        assert failed.status == "fetch_failed" and failed.error == "HTTP 503" and not failed.alerted
        assert by_key(done)["emv3ds_adapter"].status == "ok"
        async with sessions() as session:
            state = await session.get(ScriptState, "cptoken")
            assert state is not None and state.status == "ok" and state.fetch_failures == n
    assert changes("cptoken") == before
    cs = await new_session(app)
    assert 'data-mode="custom"' in await card_page(app, cs["id"])
    assert (await sign_in(app)).status_code == 303
    listing = (await app.client.get("/ops/scripts")).text
    assert 'data-fetch-failures="3"' in listing
    assert 'class="ops-tile" id="tile-scripts"' in (await app.client.get("/ops")).text
    # The gateway answering again clears the count.
    (await sim.delete("/_sandbox/scripts/CPToken.js")).raise_for_status()
    assert by_key(await run(app))["cptoken"].status == "ok"
    async with sessions() as session:
        state = await session.get(ScriptState, "cptoken")
        assert state is not None and state.fetch_failures == 0 and state.fetch_error is None


@dataclass
class AlteringProxy:
    """A reverse proxy in front of the app (as a CDN would be) that can drop or rewrite our
    security headers on the way to the browser."""

    target: str = ""
    drop: tuple[str, ...] = ()
    rewrite: dict[str, str] | None = None
    inject: str = ""
    replace: tuple[bytes, bytes] | None = None

    async def __call__(self, scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            return
        request = Request(scope, receive)  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=self.target, timeout=10) as client:
            upstream = await client.get(request.url.path, params=dict(request.query_params))
        headers = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in {h.lower() for h in self.drop}
            and k.lower() not in ("content-length", "content-encoding", "transfer-encoding")
        }
        headers.update({k.lower(): v for k, v in (self.rewrite or {}).items()})
        body = upstream.content.replace(b"</body>", self.inject.encode() + b"</body>")
        if self.replace is not None:
            body = body.replace(*self.replace)
        response = Response(body, upstream.status_code, headers=headers)
        await response(scope, receive, send)  # type: ignore[arg-type]


@pytest.fixture
async def proxy() -> AsyncIterator[tuple[AlteringProxy, str]]:
    app = AlteringProxy()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def test_the_page_check_alerts_when_a_security_header_changes_on_the_way(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    proxy: tuple[AlteringProxy, str],
) -> None:
    altering, public = proxy
    app = await make_app(public_base_url=public)
    altering.target = app.url
    clean = await run(app, pages=True)
    assert [(p.page, p.status) for p in clean.pages] == [("checkout", "ok")], clean.pages
    before = REGISTRY.get_sample_value("rp_page_drifts_total", {"page": "checkout"}) or 0.0

    altering.drop = ("X-Content-Type-Options",)
    altering.rewrite = {
        "Content-Security-Policy": "default-src *; frame-ancestors *",
        "Referrer-Policy": "unsafe-url",
    }
    drift = (await run(app, pages=True)).pages[0]
    assert drift.status == "drift" and drift.alerted
    assert "X-Content-Type-Options: missing" in drift.problems
    assert any(p.startswith("Referrer-Policy: 'unsafe-url'") for p in drift.problems)
    assert any("frame-ancestors is '*'" in p for p in drift.problems)
    assert REGISTRY.get_sample_value("rp_page_drifts_total", {"page": "checkout"}) == before + 1
    lasting = (await run(app, pages=True)).pages[0]
    assert lasting.status == "drift" and not lasting.alerted  # no alert storm

    assert (
        await app.client.post(
            "/ops/login", data={"api_key": OPS_KEY, "lang": "en"}, headers=SAME_ORIGIN
        )
    ).status_code == 303
    home = (await app.client.get("/ops?lang=en")).text
    assert 'class="ops-tile ops-tile--alert" id="tile-scripts"' in home
    listing = (await app.client.get("/ops/scripts?lang=en")).text
    assert 'data-page="checkout" data-status="drift"' in listing
    assert "X-Content-Type-Options: missing" in listing

    altering.drop, altering.rewrite = (), None
    assert (await run(app, pages=True)).pages[0].status == "ok"
    # A script injected on the way is drift too.
    altering.inject = '<script src="https://evil.example/skim.js"></script>'
    injected = (await run(app, pages=True)).pages[0]
    assert injected.status == "drift" and injected.alerted
    assert injected.problems == ("script not in the inventory: https://evil.example/skim.js",)
    altering.inject = ""
    # Our script's SRI hash stripped on the way (a CDN "optimizing" the page)...
    altering.replace = (b' integrity="', b' data-integrity="')
    stripped = (await run(app, pages=True)).pages[0]
    assert stripped.problems == (
        f"script without its integrity hash: {public}/static/checkout/checkout.js",
    )
    # ...or the gateway's script taken out: the card page checked is the real one.
    altering.replace = (b"CPToken.js", b"CPToken.jsx")
    missing = (await run(app, pages=True)).pages[0]
    assert any(
        p.startswith("script missing: ") and p.endswith("/CPToken.js") for p in missing.problems
    )
    altering.replace = None
    assert (await run(app, pages=True)).pages[0].status == "ok"

    async with sessions() as session:
        statuses = (
            (await session.execute(select(PageCheck.status).order_by(PageCheck.id))).scalars().all()
        )
    assert statuses == ["ok", "drift", "drift", "ok", "drift", "drift", "drift", "ok"]
    assert await session_count(sessions) == 0  # the probe page is no checkout session


async def session_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CheckoutSession)) or 0)


async def test_the_probe_page_is_the_card_page_only_with_a_fresh_signed_token(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app()
    good = await app.client.get(probe.path(app.settings))
    assert good.status_code == 200, good.text
    assert 'id="cn"' in good.text and "CPToken.js" in good.text and "checkout.js" in good.text
    base = f"/checkout/{probe.SESSION_ID}"
    stale = probe.token(app.settings, now=time.time() - probe.VALID - 5)
    forged = probe.token(Settings(webhook_secret_key=SecretStr("another key, another shop")))
    for bad in ("", "?probe=", "?probe=1.abc", f"?probe={stale}", f"?probe={forged}"):
        r = await app.client.get(base + bad)
        assert r.status_code == 404 and 'id="cn"' not in r.text, bad
    # A check run with another key (a misconfigured CLI) says so instead of reporting drift.
    other = app.settings.model_copy(update={"webhook_secret_key": SecretStr("another key")})
    (refused,) = await headercheck.check_pages(sessions, app.app.state.page_http, other)
    assert refused.status == "fetch_failed" and not refused.alerted
    assert "WEBHOOK_SECRET_KEY" in (refused.error or "")
    # Its form cannot pay: the session it posts to does not exist.
    r = await app.client.post(base, data={"tkn": "x" * 20}, headers=SAME_ORIGIN)
    assert r.status_code == 404
    assert await session_count(sessions) == 0


@pytest.mark.timeout(400)
async def test_pci_report_writes_both_files(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    db_url: str,
    simulator_url: str,
    tmp_path: Path,
) -> None:
    app = await make_app()
    await run(app, pages=True)
    (
        await sim.post("/_sandbox/scripts/EMV3DSAdapter.js", json={"append": TAMPERED})
    ).raise_for_status()
    await run(app)
    env = cli_env(app, db_url, simulator_url)
    code, out = await run_cli("pci-report", "--out", str(tmp_path), **env)
    assert code == 0, out
    names = sorted(p.name for p in await asyncio.to_thread(lambda: list(tmp_path.iterdir())))
    md_files = [tmp_path / n for n in names if n.endswith(".md")]
    js_files = [tmp_path / n for n in names if n.endswith(".json")]
    assert len(md_files) == len(js_files) == 1
    assert re.fullmatch(r"pci-report-\d{4}-\d{2}-\d{2}\.md", md_files[0].name)
    assert md_files[0].stem == js_files[0].stem
    data = json.loads(js_files[0].read_text())
    inv = {i["key"]: i for i in data["inventory"]}
    assert {"cptoken", "emv3ds_adapter", "checkout_js", "result_js"} <= set(inv)
    assert inv["emv3ds_adapter"]["status"] == "changed"
    assert inv["emv3ds_adapter"]["current_sha384"] != inv["emv3ds_adapter"]["approved_sha384"]
    assert inv["cptoken"]["justification"]
    assert {a["reason"] for a in data["approvals"]} == {watcher.SANDBOX_FIRST_SEEN}
    assert data["csp_reports"] == {"rows": [], "total": 0}
    assert data["page_checks"][0]["status"] == "ok"
    assert [a["key"] for a in data["alerts"]["scripts"]] == ["emv3ds_adapter"]
    assert data["fallback"] == "popup"
    md = md_files[0].read_text()
    for needle in (
        "## Script inventory (6.4.3)",
        "| emv3ds_adapter | gateway |",
        inv["emv3ds_adapter"]["current_sha384"],
        "sandbox: first seen",
        "No CSP violation reports received.",
        "## Alerts",
    ):
        assert needle in md, needle

    # The CSP collector's reports are summarised, the most frequent first.
    async with sessions.begin() as session:
        session.add(
            CspReport(
                fingerprint="f" * 64,
                directive="script-src-elem",
                blocked_uri="https://evil.example/x.js",
                page="/checkout/{id}",
                count=7,
            )
        )
    built = await report.build(sessions, app.settings)
    assert built["csp_reports"]["total"] == 7
    assert built["csp_reports"]["rows"][0]["blocked_uri"] == "https://evil.example/x.js"
    assert "https://evil.example/x.js" in report.markdown(built)


async def test_on_sbps_an_unapproved_token_script_makes_card_payment_unavailable(
    make_app: AppFactory,
    sbps_sim: httpx.AsyncClient,
    sbps_simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """SBPS's token JS changes in the SBPS simulator: one pass alerts; SBPS has no popup
    form, so the fallback is no card form and none of SBPS's scripts, until the new bytes are
    approved; restored, the old approval no longer matches them either."""
    app = await make_app(
        gateway_provider="sbps",
        sbps_api_url=f"{sbps_simulator_url}/api/xmlapi.do",
        sbps_merchant_id=sbps.MERCHANT_ID,
        sbps_service_id=sbps.SERVICE_ID,
        sbps_hash_key=sbps.HASH_KEY,
    )
    first = by_key(await run(app))
    assert set(first) == {"sbps_token", "sbps_tds2_info"}
    assert first["sbps_token"].status == first["sbps_tds2_info"].status == "ok"
    r = await app.merchant.post("/v1/checkout/sessions", json=SBPS_SESSION)
    assert r.status_code == 201, r.text
    cs_id = r.json()["id"]
    page = await card_page(app, cs_id)
    assert "com_sbps_system_token.js" in page and 'id="card-unavailable"' not in page

    before = changes("sbps_token")
    tamper = await sbps_sim.post(
        "_sandbox/scripts/com_sbps_system_token.js", json={"append": TAMPERED}
    )
    assert tamper.json()["altered"] is True
    done = by_key(await run(app))
    token = done["sbps_token"]
    assert (
        token.status == "changed" and token.alerted and token.sha384 != first["sbps_token"].sha384
    )
    assert done["sbps_tds2_info"].status == "ok"
    assert changes("sbps_token") == before + 1
    # The page check expects what the fallback serves: a page with no script.
    checked = (await run(app, pages=True)).pages
    assert [(c.page, c.status) for c in checked] == [("checkout", "ok")], checked
    page = await card_page(app, cs_id)
    assert 'id="card-unavailable"' in page and "カードでのお支払いを受け付けられません" in page
    for absent in ("com_sbps_system_token.js", 'id="mainform"', "checkout.js"):
        assert absent not in page, absent

    assert token.sha384 is not None
    await service.approve(
        sessions, app.settings, "sbps_token", token.sha384, by="t", reason="release"
    )
    assert by_key(await run(app))["sbps_token"].status == "ok"
    assert "com_sbps_system_token.js" in await card_page(app, cs_id)

    # Back to the old bytes: they are no longer the approved ones.
    (await sbps_sim.delete("_sandbox/scripts/com_sbps_system_token.js")).raise_for_status()
    assert by_key(await run(app))["sbps_token"].status == "changed"
    assert 'id="card-unavailable"' in await card_page(app, cs_id)


async def test_keep_only_alerts(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await make_app(script_watch_on_change="keep")
    await run(app)
    (await sim.post("/_sandbox/scripts/CPToken.js", json={"append": TAMPERED})).raise_for_status()
    assert by_key(await run(app))["cptoken"].alerted
    cs = await new_session(app)
    assert 'data-mode="custom"' in await card_page(app, cs["id"])
