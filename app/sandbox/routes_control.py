"""Test-control API under `_sandbox/` (JSON): inspect the ledger, users and sent kickbacks,
reset, retune the config, move the clock, inject faults, switch maintenance (ER999) on and off.
Not part of the real gateway; no IP allowlist or maintenance applies here."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from app.sandbox import cards, codes
from app.sandbox.config import SandboxConfig, config_as_json
from app.sandbox.endpoint import sim_of
from app.sandbox.faults import FaultSettings
from app.sandbox.forced import ForcedError
from app.sandbox.routes_browser import SCRIPTS
from app.sandbox.vendor_scripts import ScriptOverride

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])
# The simulator's root answers the same index (mounted: `/sandbox/`), instead of a bare 404.
root_router = APIRouter(tags=["sandbox control"])

Probability = Field(default=0.0, ge=0.0, le=1.0)


class ConfigPatch(BaseModel):
    """Any SandboxConfig field except the transport; only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    aid: str | None = None
    search_api_key: str | None = None
    allowed_ips: list[str] | None = None
    kickback_url: str | None = None
    kickback_delay: float | None = Field(default=None, ge=0)
    kickback_duplicates: int | None = Field(default=None, ge=0)
    kickback_timeout_seconds: float | None = Field(default=None, gt=0)
    kickback_resends: int | None = Field(default=None, ge=0)
    kickback_resend_interval_seconds: float | None = Field(default=None, ge=0)
    connection_auth_code: str | None = None
    connection_auth_tolerance_seconds: float | None = Field(default=None, ge=0)
    require_3ds: bool | None = None
    answer_second_sf: bool | None = None
    slow_seconds: float | None = Field(default=None, ge=0)
    hang_seconds: float | None = Field(default=None, ge=0)
    search_max_results: int | None = Field(default=None, ge=0)
    search_slow_seconds: float | None = Field(default=None, ge=0)
    token_ttl_seconds: int | None = Field(default=None, ge=0)
    billing_robo_user_id: str | None = None
    billing_robo_access_key: str | None = None
    billing_robo_allowed_ips: list[str] | None = None
    billing_robo_rate_limit: int | None = Field(default=None, ge=0)
    billing_robo_rate_window_seconds: float | None = Field(default=None, gt=0)


class ClockAdvance(BaseModel):
    advance_seconds: float


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_after_charge: float = Probability
    http_500: float = Probability
    garbage_after_charge: float = Probability
    seed: int | None = None


class Maintenance(BaseModel):
    on: bool


class SearchState(BaseModel):
    """What the charges search shows as the charge's rst: 2 未処理 or 3 決済待ち (seed 003: not
    settled yet), or null for what its status gives (1 success, 4 failure)."""

    model_config = ConfigDict(extra="forbid")

    rst: Literal[2, 3] | None = None


@router.get("", include_in_schema=False)
@router.get("/")
async def index(request: Request) -> dict[str, Any]:
    """Where everything lives, relative to wherever the simulator is mounted."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    paths = {
        "token_js": "gateway/js/CPToken.js",
        "three_ds_js": "gateway/js/EMV3DSAdapter.js",
        "token_create": "gateway/token/create.aspx",
        "three_ds_authenticate": "gateway/3ds/authenticate.aspx",
        "three_ds_challenge": "gateway/3ds/challenge.aspx",
        "gateway_token": "gateway/gateway_token.aspx",
        "onetouch": "gateway/onetouch.aspx",
        "carduser": "gateway/carduser.aspx",
        "carduser_token": "gateway/carduser_token.aspx",
        "gateway": "gateway/gateway.aspx",
        "re_auth": "gateway/re_auth.aspx",
        "search_order": "api/v1.0/charges/search/order",
        "search": "api/v1.0/charges/search",
        "billing_credit_card_token": "api/v1.0/billing_payment_method/credit_card_token",
        "billing_payers": "_sandbox/billing/payers",
        "ledger": "_sandbox/ledger",
        "docs": "_sandbox/docs",
    }
    return {"endpoints": {k: f"{root}/{v}" for k, v in paths.items()}, "cards": cards.describe()}


@root_router.get("/", summary="Where everything lives (the same as `_sandbox/`)")
async def root_index(request: Request) -> dict[str, Any]:
    return await index(request)


@router.get("/ledger")
async def ledger(request: Request) -> list[dict[str, Any]]:
    """Each charge with the delivery attempts of its kickbacks (status, body, accepted)."""
    sim = sim_of(request)
    attempts: dict[str, list[dict[str, Any]]] = {}
    for delivery in sim.deliveries:
        attempts.setdefault(delivery.gid, []).extend(delivery.attempts)
    return [
        {**t.ledger_view(), "kickbacks": attempts.get(str(t.gid), [])} for t in sim.ledger.values()
    ]


@router.post("/ledger/{gid}/search")
async def set_search_state(request: Request, gid: int, body: SearchState) -> dict[str, Any]:
    txn = sim_of(request).ledger.get(gid)
    if txn is None:
        raise HTTPException(status_code=404, detail=f"no charge with gid {gid}")
    txn.search_rst = body.rst
    return txn.search_view()


class ForceError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="an ER code of the seed's table (seed 000 p.26)")
    endpoint: str | None = Field(
        default=None, description="e.g. gateway_token.aspx; unset: any gateway endpoint"
    )
    times: int = Field(default=1, ge=1, le=1000)


@router.post("/errors", status_code=201)
async def force_error(request: Request, body: ForceError) -> list[dict[str, Any]]:
    """The next `times` requests to `endpoint` are refused with `code`, in that endpoint's
    layout, before anything is charged or stored."""
    if not body.code.startswith("ER") or body.code not in codes.MESSAGES:
        raise HTTPException(status_code=422, detail=f"{body.code!r} is not an ER code we know")
    forced = sim_of(request).forced_errors
    forced.append(ForcedError(body.code, body.endpoint, body.times))
    return [f.view() for f in forced]


@router.get("/errors")
async def forced_errors(request: Request) -> list[dict[str, Any]]:
    return [f.view() for f in sim_of(request).forced_errors]


@router.delete("/errors")
async def clear_forced_errors(request: Request) -> dict[str, bool]:
    sim_of(request).forced_errors.clear()
    return {"ok": True}


@router.post("/ledger/{gid}/recurring")
async def run_recurring_charge(request: Request, gid: int) -> dict[str, Any]:
    """The next charge of the recurring billing (自動課金) that charge `gid` belongs to: the
    gateway makes it by itself (the search's isac true), with the same card, amounts and
    order number and jb CAPTURE (research §2.3: a recurring billing is CAPTURE only). A
    charge without one becomes the first charge of a new billing (its acid; still isac
    false, seed 003 p.8). Answers the new charge as the search shows it."""
    sim = sim_of(request)
    async with sim.lock:
        first = sim.ledger.get(gid)
        if first is None or not first.approved:
            raise HTTPException(status_code=404, detail=f"no approved charge with gid {gid}")
        if first.acid is None:
            first.acid = sim.next_acid()
        now = sim.clock.now()
        txn = dataclasses.replace(
            first,
            gid=sim.next_gid(),
            god=sim.next_god(),
            jb="CAPTURE",
            initial_jb="CAPTURE",
            status="captured",
            ap=sim.new_ap(),
            created_at=now,
            updated_at=now,
            canceled_at=None,
            reauth_of=None,
            search_rst=None,
            automatic=True,
            free={},
        )
        sim.ledger[txn.gid] = txn
        return txn.search_view()


@router.get("/users")
async def users(request: Request) -> list[dict[str, Any]]:
    return [u.view() for u in sim_of(request).users.values() if not u.pending]


@router.get("/kickbacks")
async def kickbacks(request: Request) -> list[dict[str, Any]]:
    """Every delivery attempt in order: delivery id, attempt number, kind (first, duplicate,
    resend), status, body, accepted (HTTP 200 and a non-empty body)."""
    return sim_of(request).kickbacks


@router.get("/kickbacks/deliveries")
async def kickback_deliveries(request: Request) -> list[dict[str, Any]]:
    """Each notice: state (sending, waiting, accepted, given_up), re-sends so far, when the
    next one is due on the simulator's clock, and its attempts."""
    return [d.view() for d in sim_of(request).deliveries]


@router.get("/cards")
async def magic_cards() -> list[dict[str, str]]:
    return cards.describe()


@router.post("/reset")
async def reset(request: Request) -> dict[str, bool]:
    sim = sim_of(request)
    async with sim.lock:
        sim.reset()
    return {"ok": True}


def _shown(config: SandboxConfig) -> dict[str, Any]:
    # The connection-auth code is a shop secret: said to be set, never shown.
    shown = config_as_json(config)
    if shown["connection_auth_code"]:
        shown["connection_auth_code"] = "***"
    return shown


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return _shown(sim_of(request).config)


@router.post("/config")
async def set_config(request: Request, patch: ConfigPatch) -> dict[str, Any]:
    config = sim_of(request).config
    for name, value in patch.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(config, name, value)
    return _shown(config)


@router.get("/clock")
async def get_clock(request: Request) -> dict[str, Any]:
    clock = sim_of(request).clock
    return {"now": clock.now().isoformat(), "offset_seconds": clock.offset}


@router.post("/clock")
async def advance_clock(request: Request, body: ClockAdvance) -> dict[str, Any]:
    clock = sim_of(request).clock
    clock.advance(body.advance_seconds)
    return {"now": clock.now().isoformat(), "offset_seconds": clock.offset}


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return sim_of(request).faults.view()


@router.post("/faults")
async def set_faults(request: Request, body: Faults) -> dict[str, Any]:
    faults = sim_of(request).faults
    faults.configure(FaultSettings(**body.model_dump()))
    return faults.view()


@router.get("/maintenance")
async def get_maintenance(request: Request) -> dict[str, bool]:
    return {"on": sim_of(request).maintenance}


@router.post("/maintenance")
async def set_maintenance(request: Request, body: Maintenance) -> dict[str, bool]:
    sim = sim_of(request)
    sim.maintenance = body.on
    return {"on": sim.maintenance}


ScriptName = Literal["CPToken.js", "EMV3DSAdapter.js"]


@router.post("/scripts/{name}")
async def override_script(
    request: Request, name: ScriptName, body: ScriptOverride
) -> dict[str, Any]:
    return sim_of(request).scripts.change(name, SCRIPTS[name], body)


@router.delete("/scripts/{name}")
async def restore_script(request: Request, name: ScriptName) -> dict[str, Any]:
    return sim_of(request).scripts.change(name, SCRIPTS[name], None)
