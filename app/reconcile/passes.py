"""A reconciliation pass run by hand (the API's `POST /v1/reconciliations` and the ops
console): the payments, then with scope `open` the orphan sweep, as the settings allow."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.gateway.base import PaymentGateway
from app.reconcile import orphans, service


@dataclass(frozen=True)
class PassResult:
    summary: service.ReconcileSummary
    sweep: orphans.SweepSummary | None


async def run_now(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    settings: Settings,
    *,
    all_open: bool,
    limit: int,
) -> PassResult:
    summary = await service.reconcile_due(
        sessions, gateway, limit=limit, all_open=all_open, pay_claim=settings.pay_claim
    )
    sweep = orphans.SweepSettings.of(settings)
    swept = await orphans.sweep(sessions, gateway, sweep) if all_open and sweep else None
    return PassResult(summary, swept)
