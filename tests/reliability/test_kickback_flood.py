"""The kickback endpoint must not amplify unauthenticated senders (issue 15, finding 10).

Untrusted kickbacks (not the secret path, not an allowed peer) have a per-source budget of
stored notices; the raw bytes kept are capped at 8 KiB; verification searches are cached per
gid and budgeted per minute, and what exceeds the budget waits (deferred), never applied.
Each answer is still 200 with a body. The app runs as its own process on PostgreSQL, against
the simulator process.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.kickbacks.models import Kickback
from app.kickbacks.service import MAX_RAW
from app.payments.models import Payment
from tests.reliability.support_chaos import app_processes
from tests.reliability.support_kickbacks import (
    deliver,
    held_kickbacks,
    new_session,
    params,
    pay,
    processed,
    search_calls,
    wait_held,
)
from tests.support.fixtures import KICKBACK_PATH

pytestmark = pytest.mark.reliability

PER_SOURCE = 30  # KICKBACK_UNTRUSTED_PER_SOURCE_PER_MINUTE's default
VERIFY_PER_MINUTE = 10


def _env(simulator_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "GATEWAY_BASE_URL": simulator_url,
        "SEARCH_API_BASE_URL": f"{simulator_url}/api",
        "RECONCILE_INTERVAL_SECONDS": "0",
        "GATEWAY_RESULT_MODE": "0",
        "SPOOL_DIR": str(tmp_path / "spool"),
        # No allowlist: the tests' own address is just another untrusted source on /kickback
        # (an allowed peer would not be budgeted); the secret path alone is trusted.
        "KICKBACK_ALLOWED_IPS": "",
        **extra,
    }


def _budget(per_minute: int, started: float) -> int:
    """What a per-minute bucket can let through since `started`: full, plus its refill (a
    bound that only grows on a slow machine: no timing is asserted)."""
    return per_minute + int((time.monotonic() - started) * per_minute / 60) + 1


def _log_dir(tmp_path: Path) -> Path:
    return Path(os.environ.get("TEST_LOG_DIR") or tmp_path)


@pytest.mark.timeout(300)
async def test_a_junk_flood_stores_a_bounded_number_of_bytes(
    db_url: str,
    simulator_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """1,000 junk kickbacks of 64 KiB each from one address, on /kickback."""
    env = _env(simulator_url, tmp_path)
    async with app_processes([env], db_url=db_url, log_dir=_log_dir(tmp_path), name="kb-junk") as [
        app
    ]:
        rng = random.Random(10)
        junk = [rng.randbytes(64 * 1024) for _ in range(8)]
        limit = asyncio.Semaphore(8)
        answers: Counter[tuple[int, str]] = Counter()

        async def one(i: int) -> None:
            async with limit:
                r = await app.client.post(
                    "/kickback",
                    content=junk[i % len(junk)],
                    headers={"content-type": "application/x-www-form-urlencoded"},
                )
                answers[(r.status_code, r.text)] += 1

        started = time.monotonic()
        await asyncio.gather(*[one(i) for i in range(1000)])
        bound = _budget(PER_SOURCE, started)
        metrics = (await app.client.get("/metrics")).text
        async with sessions() as session:
            rows, stored = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(
                            func.sum(
                                func.octet_length(Kickback.raw_query)
                                + func.octet_length(Kickback.raw_body)
                            ),
                            0,
                        ),
                    )
                )
            ).one()
    over = [line for line in metrics.splitlines() if line.startswith("rp_kickbacks_received_total")]
    with capsys.disabled():
        print(
            f"\njunk flood: 1,000 x 64 KiB -> {rows} rows, {stored:,} bytes stored; "
            f"answers {dict(answers)}; {over}"
        )
    assert answers == Counter({(200, "OK"): 1000})
    assert rows <= bound and stored <= bound * MAX_RAW, bound


@pytest.mark.timeout(300)
async def test_forged_kickbacks_for_a_real_order_cost_a_bounded_number_of_searches(
    db_url: str,
    simulator_url: str,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """200 forged successes naming a real, charged order (its kickback not here yet), each
    with another gid. None may apply; the searches they cause are bounded; the gateway's
    own kickback and the janitor still work."""
    env = _env(simulator_url, tmp_path, KICKBACK_VERIFY_SEARCHES_PER_MINUTE=str(VERIFY_PER_MINUTE))
    async with (
        app_processes([env], db_url=db_url, log_dir=_log_dir(tmp_path), name="kb-forged") as [app],
        held_kickbacks(sim) as relay,
    ):
        cs = await new_session(app, "realorder")
        r = await pay(app, sim, cs)
        assert r.status_code == 202, r.text
        [real] = await wait_held(relay, 1)
        real_gid = int(params(real)["gid"])
        before = await search_calls(sessions)
        started = time.monotonic()
        forged = [
            f"gid={real_gid + 1000 + i}&rst=1&ap=F&ec=&god=1&cod=realorder"
            f"&am={cs['amount']}&tx={cs['tax']}&sf={cs['shipping']}&ta={cs['total']}"
            for i in range(200)
        ]
        for query in forged:
            await deliver(app.url, "/kickback", query)
        inbox = await processed(sessions, 1)
        searches = await search_calls(sessions) - before
        stored_bound = _budget(PER_SOURCE, started)
        search_bound = _budget(VERIFY_PER_MINUTE, started)
        statuses = Counter(k.status for k in inbox)
        async with sessions() as session:
            p = await session.scalar(select(Payment).where(Payment.order_id == "realorder"))
        assert p is not None
        with capsys.disabled():
            print(
                f"\n200 forged kickbacks for a real order: {len(inbox)} stored "
                f"{dict(statuses)}, {searches} charges searches; the payment {p.status}"
            )
        assert p.status == "pending" and "applied" not in statuses
        assert len(inbox) <= stored_bound, stored_bound
        assert searches <= search_bound, (searches, search_bound)
        # The gateway's own kickback is not held back by the forged ones.
        await deliver(app.url, KICKBACK_PATH, real)
        for _ in range(100):
            async with sessions() as session:
                p = await session.get(Payment, p.id)
            assert p is not None
            if p.status != "pending":
                break
            await asyncio.sleep(0.1)
        assert p.status == "captured" and p.gid == real_gid
        # Reconciliation (its own searches, not the kickbacks' budget) still answers.
        recon = await app.ops.post("/v1/reconciliations", json={"scope": "open"})
        assert recon.status_code == 200 and recon.json()["errors"] == 0, recon.text
