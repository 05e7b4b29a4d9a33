"""A late kickback must change only the payment (attempt) it reports (issue 15, finding 1).

A declined first attempt (failed, no gid: rt=0 answers only `G12`) and a pending retry share
cod and total. The first attempt's decline kickback arrives late, after the retry was sent;
matched by cod + total it used to fail the charged retry, whose own success kickback then
landed on the failed first attempt: the session reopened and the shopper was charged twice.
Every charge now carries our payment id as a free parameter, which the gateway echoes in the
kickback. Two replicas (rt=1 and rt=0) on one PostgreSQL, the simulator over HTTP, kickbacks
held and delivered late in that order; the ledger is the judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.sandbox import cards
from tests.reliability.support_chaos import AppProcess
from tests.reliability.support_kickbacks import (
    charged,
    deliver,
    held_kickbacks,
    mismatches,
    new_session,
    params,
    pay,
    processed,
    replicas,
    wait_held,
)
from tests.support.fixtures import KICKBACK_PATH

pytestmark = pytest.mark.reliability


@pytest.mark.parametrize(
    ("variant", "allowed_ips", "path"),
    [
        # The gateway's kickbacks on the trusted path (from an allowed address).
        ("same session", "127.0.0.1", KICKBACK_PATH),
        # A new checkout session of the merchant's that reuses the order id.
        ("new session, same order id", "127.0.0.1", KICKBACK_PATH),
        # No allowlist and the public path: each one verified through the charges search.
        ("search verification", "", "/kickback"),
    ],
)
@pytest.mark.timeout(180)
async def test_a_late_decline_never_fails_the_retry_and_the_shopper_pays_once(
    variant: str,
    allowed_ips: str,
    path: str,
    db_url: str,
    simulator_url: str,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    order = f"late{variant.split()[0]}"
    async with (
        replicas(
            db_url=db_url,
            simulator_url=simulator_url,
            tmp_path=tmp_path,
            allowed_ips=allowed_ips,
            name="kb-late",
        ) as (rt1, rt0),
        held_kickbacks(sim) as relay,
    ):
        # 1. The first attempt is declined: rt=0 answers `G12` alone, so no gid for us yet.
        first_cs = await new_session(rt0, order)
        first = await pay(rt0, sim, first_cs, cards.CARD_DECLINE_G12)
        assert first.status_code == 402, first.text
        # 2. The shopper tries again (or the merchant opens a new session for the order).
        cs = first_cs if variant == "same session" else await new_session(rt0, order)
        retry = await pay(rt0, sim, cs)
        assert retry.status_code == 202 and retry.json()["status"] == "pending", retry.text
        decline, success = await wait_held(relay, 2)
        assert params(decline)["rst"] == "2" and params(success)["rst"] == "1"

        # 3. The decline's kickback arrives late, then the retry's; on both replicas.
        await deliver(rt1.url, path, decline)
        await processed(sessions, 1)
        await deliver(rt0.url, path, success)
        inbox = await processed(sessions, 2)

        # 4. The shopper looks at the session again and pays if it lets them.
        again = await _pay_again(rt1, sim, cs)
        charges = await charged(sim, order)
        wrong = await mismatches(sessions, sim, order)
        with capsys.disabled():
            print(
                f"\nlate kickback ({variant}): {len(charges)} charge(s) for the session; "
                f"pay again -> {again}; inbox {[(k.status, k.note) for k in inbox]}"
            )
        assert again == 409, "the session reopened after a charged payment"
        assert len(charges) == 1, charges
        assert wrong == [], wrong
        assert [k.status for k in inbox] == ["applied", "applied"]


async def _pay_again(app: AppProcess, sim: httpx.AsyncClient, cs: dict[str, Any]) -> int:
    return (await pay(app, sim, cs)).status_code
