"""A reconciliation pass run by hand (the API's `POST /v1/reconciliations`, the ops console)
or by the janitor: the payments, then with scope `open` the orphan sweep, as the settings
allow, recorded in `reconcile_passes` with its progress (app/reconcile/history.py).
`python -m app reconcile` prints its own progress and is not recorded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import waits
from app.config import Settings
from app.db import utcnow
from app.gateway.base import PaymentGateway
from app.payments.service import PAY_CLAIM
from app.reconcile import history, orphans, service

log = logging.getLogger(__name__)

# The console's passes run after its answer; held here so they are not collected mid-pass.
_RUNNING: set[asyncio.Task[None]] = set()


@dataclass(frozen=True)
class PassResult:
    pass_id: int
    summary: service.ReconcileSummary
    sweep: orphans.SweepSummary | None


async def run_now(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    settings: Settings,
    *,
    all_open: bool,
    limit: int,
    trigger: str,
    actor: str | None,
    on_check: Callable[[service.PaymentCheck], None] | None = None,
) -> PassResult:
    pass_id = await history.start(
        sessions, trigger=trigger, actor=actor, scope="open" if all_open else "due"
    )
    return await _run(sessions, gateway, settings, pass_id, all_open, limit, on_check)


async def start_in_background(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    settings: Settings,
    *,
    limit: int,
    trigger: str,
    actor: str | None,
) -> int:
    """Records an `open` pass and runs it after returning its id (its page shows the
    progress); a pass whose process stops shows as interrupted (history.PassView.state)."""
    pass_id = await history.start(sessions, trigger=trigger, actor=actor, scope="open")

    async def go() -> None:
        try:
            await _run(sessions, gateway, settings, pass_id, True, limit, None)
        except Exception:  # recorded as failed by _run when the database let it
            log.exception("reconciliation pass %s failed", pass_id)

    task = asyncio.create_task(go(), name=f"reconcile-pass-{pass_id}")
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    return pass_id


async def _run(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    settings: Settings,
    pass_id: int,
    all_open: bool,
    limit: int,
    on_check: Callable[[service.PaymentCheck], None] | None,
) -> PassResult:
    progress = history.Progress()
    changed = asyncio.Event()

    def checked(check: service.PaymentCheck) -> None:
        changed.set()  # progress.summary has counted it
        if on_check is not None:
            on_check(check)

    def leased(total: int) -> None:
        progress.total = total
        changed.set()

    async def heartbeat() -> None:
        # Progress is written at most once a HEARTBEAT (and at least then, so an alive pass
        # is never taken for an interrupted one), not once per payment. It ends when `over`
        # is set, not by cancel, so the pass never waits on a heartbeat that missed it.
        while not over.is_set():
            await waits.any_of(changed, over, seconds=history.HEARTBEAT.total_seconds())
            if over.is_set():
                return
            changed.clear()
            try:
                await history.step(sessions, pass_id, progress)
            except Exception as exc:  # the database may blink: the next step writes it
                log.warning("reconciliation pass %s: progress not written: %s", pass_id, exc)
            await waits.any_of(over, seconds=history.HEARTBEAT.total_seconds())

    over = asyncio.Event()
    beat = asyncio.create_task(heartbeat())
    try:
        summary = await service.reconcile_due(
            sessions,
            gateway,
            limit=limit,
            all_open=all_open,
            pay_claim=settings.pay_claim,
            on_check=checked,
            on_leased=leased,
            summary=progress.summary,
        )
        sweep = orphans.SweepSettings.of(settings)
        swept = await orphans.sweep(sessions, gateway, sweep) if all_open and sweep else None
    except Exception as exc:
        over.set()
        await beat
        await history.finish(sessions, pass_id, progress, error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        over.set()  # also when the pass itself is cancelled (the app stopping)
    # Its last write must not land after the final one (it would be refused anyway: status).
    await beat
    progress.orphans = swept.orphans if swept is not None else None
    await history.finish(sessions, pass_id, progress)
    return PassResult(pass_id, summary, swept)


async def background_loop(
    sessions: async_sessionmaker[AsyncSession],
    gateway: PaymentGateway,
    *,
    interval: float,
    batch_size: int,
    pay_claim: timedelta = PAY_CLAIM,
    sweep: orphans.SweepSettings | None = None,
) -> None:
    """The janitor: a pass every `interval` seconds, and sooner when a scheduled check falls
    due (looking every PEEK seconds), forever; each replica may run one. With `sweep`, the
    orphan sweep runs too, every `sweep.interval` (one replica at a time: it is leased). A
    pass that checked or found something joins the history."""
    last_sweep = -1e18
    next_pass = time.monotonic() + interval
    while True:
        # Between passes, peek at the schedule: a check due before the next pass (an rt=0
        # payment whose kickback is late after 30 s) runs then, not a whole interval later.
        await asyncio.sleep(min(service.PEEK, max(0.0, next_pass - time.monotonic())))
        if time.monotonic() < next_pass and not await service.check_due(sessions):
            continue
        try:
            next_pass = time.monotonic() + interval
            started = utcnow()
            progress = history.Progress()
            progress.summary = await service.reconcile_due(
                sessions, gateway, limit=batch_size, pay_claim=pay_claim
            )
            if sweep is not None and time.monotonic() - last_sweep >= sweep.interval:
                last_sweep = time.monotonic()
                progress.orphans = (await orphans.sweep(sessions, gateway, sweep)).orphans
            progress.total = progress.summary.checked
            if progress.total or progress.orphans:
                await history.record_finished(
                    sessions,
                    progress,
                    trigger="janitor",
                    actor=None,
                    scope="due",
                    started_at=started,
                )
        except Exception as exc:  # the database may be down: try again next round
            log.warning("reconciliation deferred: %s", exc)
