"""Test control under `_sandbox/` (JSON), like the ROBOT PAYMENT simulator's: the ledger, stored
cards and 3-D Secure authentications, reset, config, clock, faults, maintenance. Not part of
SBPS; no auth, no maintenance here."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.sandbox.faults import FaultSettings
from app.sandbox.sbps import cards
from app.sandbox.sbps.api import PATH, state_of
from app.sandbox.sbps.browser import SCRIPTS, TDS2_JS, TDS2_PATH, TOKEN_JS, TOKEN_PATH
from app.sandbox.sbps.config import shown
from app.sandbox.vendor_scripts import ScriptOverride

router = APIRouter(prefix="/_sandbox", tags=["SBPS sandbox control"])
root_router = APIRouter(tags=["SBPS sandbox control"])

Probability = Field(default=0.0, ge=0.0, le=1.0)
# codes.MAINTENANCE_CODES (test_maintenance_codes sets each one through this route).
MaintenanceCode = Literal["10121999", "10123999", "10128999", "10136999"]


class ConfigPatch(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    merchant_id: str | None = Field(default=None, pattern=r"^\d{5}$")
    service_id: str | None = Field(default=None, pattern=r"^\d{3}$")
    hash_key: str | None = Field(default=None, min_length=1)
    default_limit_second: int | None = Field(default=None, ge=0)
    future_tolerance_seconds: float | None = Field(default=None, ge=0)
    token_ttl_seconds: int | None = Field(default=None, ge=0)
    tds_info_token_ttl_seconds: int | None = Field(default=None, ge=0)
    tds_authentication_ttl_seconds: int | None = Field(default=None, ge=0)
    auto_sales: bool | None = None
    slow_seconds: float | None = Field(default=None, ge=0)
    hang_seconds: float | None = Field(default=None, ge=0)
    public_base_url: str | None = None


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout_after_charge: float = Probability
    http_500: float = Probability
    garbage_after_charge: float = Probability
    seed: int | None = None


class Maintenance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool
    # Which card brand each code stands for is not public: pick the one to answer.
    code: MaintenanceCode = "10121999"


class ClockAdvance(BaseModel):
    advance_seconds: float


@router.get("", include_in_schema=False)
@router.get("/")
async def index(request: Request) -> dict[str, Any]:
    root = str(request.scope.get("root_path", "")).rstrip("/")
    paths = {
        "xmlapi": PATH,
        "token_js": f"/sbpstoken/{TOKEN_JS}",
        "token": TOKEN_PATH,
        "tds2_info_token_js": f"/sbpstoken/{TDS2_JS}",
        "tds2_info_token": TDS2_PATH,
        "ledger": "/_sandbox/ledger",
        "docs": "/_sandbox/docs",
    }
    return {"endpoints": {k: f"{root}{v}" for k, v in paths.items()}, "cards": cards.describe()}


@root_router.get("/", summary="Where everything lives (the same as `_sandbox/`)")
async def root_index(request: Request) -> dict[str, Any]:
    return await index(request)


@router.get("/ledger")
async def ledger(request: Request) -> list[dict[str, Any]]:
    """Every authorization attempt in order, approved or declined, with its later changes."""
    return [t.view() for t in state_of(request).ledger]


@router.get("/cards")
async def stored_cards(request: Request) -> list[dict[str, Any]]:
    return [c.view() for c in state_of(request).cards.values()]


@router.get("/tds")
async def tds_authentications(request: Request) -> list[dict[str, Any]]:
    return [
        {"id": a.id, "order_id": a.order.order_id, "status": a.status, "used": a.used}
        for a in state_of(request).tds.values()
    ]


@router.get("/magic-cards")
async def magic_cards() -> list[dict[str, str]]:
    return cards.describe()


ScriptName = Literal["com_sbps_system_token.js", "com_sbps_system_tds2infotoken.js"]


@router.post("/scripts/{name}")
async def override_script(
    request: Request, name: ScriptName, body: ScriptOverride
) -> dict[str, Any]:
    """The token JS served changed (more bytes at its end) or failing, until restored or
    reset: a test of the merchant's script watcher."""
    return state_of(request).scripts.change(name, SCRIPTS[name], body)


@router.delete("/scripts/{name}")
async def restore_script(request: Request, name: ScriptName) -> dict[str, Any]:
    return state_of(request).scripts.change(name, SCRIPTS[name], None)


@router.post("/reset")
async def reset(request: Request) -> dict[str, bool]:
    sim = state_of(request)
    async with sim.lock:
        sim.reset()
    return {"ok": True}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return shown(state_of(request).config)


@router.post("/config")
async def set_config(request: Request, patch: ConfigPatch) -> dict[str, Any]:
    config = state_of(request).config
    for name, value in patch.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(config, name, value)
    return shown(config)


@router.get("/clock")
async def get_clock(request: Request) -> dict[str, Any]:
    clock = state_of(request).clock
    return {"now": clock.now().isoformat(), "offset_seconds": clock.offset}


@router.post("/clock")
async def advance_clock(request: Request, body: ClockAdvance) -> dict[str, Any]:
    clock = state_of(request).clock
    clock.advance(body.advance_seconds)
    return {"now": clock.now().isoformat(), "offset_seconds": clock.offset}


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return state_of(request).faults.view()


@router.post("/faults")
async def set_faults(request: Request, body: Faults) -> dict[str, Any]:
    faults = state_of(request).faults
    faults.configure(FaultSettings(**body.model_dump()))
    return faults.view()


@router.get("/maintenance")
async def get_maintenance(request: Request) -> dict[str, Any]:
    code = state_of(request).maintenance
    return {"on": code is not None, "code": code}


@router.post("/maintenance")
async def set_maintenance(request: Request, body: Maintenance) -> dict[str, Any]:
    sim = state_of(request)
    sim.maintenance = body.code if body.on else None
    return {"on": sim.maintenance is not None, "code": sim.maintenance}
