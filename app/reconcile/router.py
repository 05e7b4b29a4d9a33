"""`POST /v1/reconciliations`: run a reconciliation pass now (ops)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from app.auth import OpsDep
from app.deps import GatewayDep, SessionFactoryDep, SettingsDep
from app.errors import Problem
from app.reconcile import passes

router = APIRouter(prefix="/v1/reconciliations", tags=["reconciliation"])


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scope: Literal["open", "due"] = Field(
        "open",
        description="`open`: every unknown/pending payment and every scheduled check, now; "
        "`due`: only what the janitor would take now.",
    )
    limit: int = Field(500, ge=1, le=1000)


class PaymentCheckOut(BaseModel):
    payment_id: str
    result: Literal["settled", "confirmed", "rescheduled", "flagged", "skipped", "error"]
    from_status: str
    to_status: str
    note: str | None


class OrphanSweepOut(BaseModel):
    ran: bool = Field(description="false: another replica was sweeping, or nothing was due")
    windows: int = Field(description="windows of the charges search looked at (one search each)")
    charges: int = Field(description="successful charges in them")
    orphans: list[str] = Field(description="flagged payments made for charges no payment held")


class ReconcileSummaryOut(BaseModel):
    pass_id: int = Field(description="the pass in the history (the ops console's reconciliation)")
    checked: int
    settled: int
    confirmed: int
    rescheduled: int
    flagged: int
    skipped: int
    errors: int
    results: list[PaymentCheckOut]
    orphan_sweep: OrphanSweepOut | None = Field(
        None, description="with scope `open`: the orphan sweep run after the payments"
    )


@router.post(
    "",
    response_model=ReconcileSummaryOut,
    responses={code: {"model": Problem} for code in (401, 403, 422)},
    summary="Reconcile unknown/pending payments against the charges search now",
)
async def run_reconciliation(
    principal: OpsDep,
    sessions: SessionFactoryDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    body: ReconcileRequest | None = None,
) -> ReconcileSummaryOut:
    body = body or ReconcileRequest()
    done = await passes.run_now(
        sessions,
        gateway,
        settings,
        all_open=body.scope == "open",
        limit=body.limit,
        trigger="api",
        actor=principal.id,
    )
    out = ReconcileSummaryOut.model_validate({**done.summary.as_dict(), "pass_id": done.pass_id})
    if done.sweep is not None:
        swept = done.sweep
        out.orphan_sweep = OrphanSweepOut(
            ran=swept.ran, windows=swept.windows, charges=swept.charges, orphans=swept.orphans
        )
    return out
