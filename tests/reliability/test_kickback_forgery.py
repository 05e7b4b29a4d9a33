"""Forged kickbacks change nothing (issue 15, findings 3 and 4).

The gateway signs nothing. Trusted is only the secret path `/kickback/<KICKBACK_SECRET>` from
an allowed peer; `/kickback`, a wrong secret, a claimed X-Forwarded-For address and a notice
without amounts are all verified through the charges search, which must show this payment's
charge (cod, total, time, a gid no other payment holds) in the claimed state. A failure of a
payment that may have been charged is confirmed by the search even on the trusted path.
Two replicas (rt=1, rt=0) on one PostgreSQL and the simulator over HTTP; the ledger judges.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.payments.models import Payment
from app.sandbox.testing import pay_by_token
from tests.reliability.support_chaos import AppProcess
from tests.reliability.support_kickbacks import (
    charged,
    deliver,
    held_kickbacks,
    ledger,
    new_session,
    params,
    pay,
    payments_of,
    processed,
    replicas,
    search_calls,
    wait_held,
)
from tests.support.fixtures import KICKBACK_PATH, KICKBACK_SECRET

pytestmark = pytest.mark.reliability

GATEWAY_IP = "203.0.113.7"  # the address the shop lists in KICKBACK_ALLOWED_IPS
CLAIM = {"X-Forwarded-For": GATEWAY_IP}


@contextlib.asynccontextmanager
async def _replicas(
    db_url: str, simulator_url: str, tmp: pytest.TempPathFactory, allowed: str
) -> AsyncIterator[list[AppProcess]]:
    async with replicas(
        db_url=db_url,
        simulator_url=simulator_url,
        tmp_path=tmp.mktemp("kb-forged"),
        allowed_ips=allowed,
        name="kb-forged",
    ) as apps:
        yield apps


# Replica pairs shared by this module's tests (each test truncates the tables).
@pytest.fixture(scope="module")
async def gateway_ip_apps(
    db_url: str, simulator_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[AppProcess]]:
    """KICKBACK_ALLOWED_IPS is the gateway's address (which the tests can only claim)."""
    async with _replicas(db_url, simulator_url, tmp_path_factory, GATEWAY_IP) as apps:
        yield apps


@pytest.fixture(scope="module")
async def local_apps(
    db_url: str, simulator_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[AppProcess]]:
    """The tests' own address is allowed: the secret path is trusted from here."""
    async with _replicas(db_url, simulator_url, tmp_path_factory, "127.0.0.1") as apps:
        yield apps


@pytest.fixture(scope="module")
async def no_allowlist_apps(
    db_url: str, simulator_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[list[AppProcess]]:
    """No allowlist: the secret alone is trusted; everything else is verified by search."""
    async with _replicas(db_url, simulator_url, tmp_path_factory, "") as apps:
        yield apps


async def _unknown_payment(
    app: AppProcess, sim: httpx.AsyncClient, order: str, total: int
) -> dict[str, Any]:
    """A payment whose answer was a 500 the gateway sent before charging: `unknown`, no gid,
    and nothing in the ledger (the kind an attacker wants to see 'captured')."""
    cs = await new_session(app, order, amount=total - 580)
    (await sim.post("/_sandbox/faults", json={"http_500": 1.0})).raise_for_status()
    try:
        r = await pay(app, sim, cs)
    finally:
        (await sim.post("/_sandbox/faults", json={})).raise_for_status()
    assert r.status_code == 202 and r.json()["status"] == "unknown", r.text
    data: dict[str, Any] = r.json()
    return data


def _forged(
    p: dict[str, Any], gid: int, *, rst: int = 1, amounts: bool = True, ref: bool = True
) -> str:
    """What an attacker sends: the order id and total from the shop, our payment id from the
    pay answer (or not), a guessed gid."""
    fields: dict[str, Any] = {"gid": gid, "rst": rst, "ap": "F0RGED"}
    fields |= {"ec": "" if rst == 1 else "G12", "god": 1, "cod": p["order_id"]}
    if amounts:
        fields |= {"am": p["amount"], "tx": p["tax"], "sf": p["shipping"], "ta": p["total"]}
    if ref:
        fields["payment_ref"] = p["id"]
    return urlencode(fields)


async def _status(sessions: async_sessionmaker[AsyncSession], pid: str) -> Payment:
    async with sessions() as session:
        p = await session.get(Payment, pid)
        assert p is not None
        return p


async def _someone_elses_gid(sim: httpx.AsyncClient) -> int:
    """A real, charged gid of an order that is not ours (gids are sequential: guessable)."""
    await pay_by_token(sim, cod="someoneelse", am=300)
    [row] = await ledger(sim, "someoneelse")
    return int(row["gid"])


@pytest.mark.timeout(180)
async def test_forged_success_from_a_claimed_gateway_address_changes_nothing(
    gateway_ip_apps: list[AppProcess],
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """48,000 yen, never charged; the attacker claims the gateway's address via
    X-Forwarded-For, on /kickback and with a wrong secret."""
    rt1, rt0 = gateway_ip_apps
    p = await _unknown_payment(rt1, sim, "forged48000", 48_000)
    gid = await _someone_elses_gid(sim)
    for n, path in enumerate(["/kickback", "/kickback/not-the-secret-000000000000"], 1):
        await deliver((rt1, rt0)[n % 2].url, path, _forged(p, gid), CLAIM)
        [*_, kb] = await processed(sessions, n)
        now = await _status(sessions, p["id"])
        with capsys.disabled():
            print(
                f"\nforged success on {path} (X-Forwarded-For {GATEWAY_IP}): 48,000 yen "
                f"payment {now.status}, kickback {kb.status}"
            )
        assert now.status == "unknown" and now.gid is None, (path, now.status, kb.note)
        assert kb.status == "flagged" and not kb.trusted, (path, kb.status, kb.note)
    assert await charged(sim, "forged48000") == []


@pytest.mark.timeout(180)
async def test_forged_success_with_the_secret_from_a_claimed_address_changes_nothing(
    gateway_ip_apps: list[AppProcess],
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Even with the secret (leaked), a peer that is not on the allowlist is not trusted."""
    rt1, _rt0 = gateway_ip_apps
    p = await _unknown_payment(rt1, sim, "forgedsecret", 48_000)
    gid = await _someone_elses_gid(sim)
    await deliver(rt1.url, KICKBACK_PATH, _forged(p, gid), CLAIM)
    [kb] = await processed(sessions, 1)
    assert (await _status(sessions, p["id"])).status == "unknown"
    assert not kb.trusted


@pytest.mark.timeout(180)
async def test_trusted_success_without_amounts_changes_nothing(
    local_apps: list[AppProcess],
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A success without ta (nor am/tx/sf) is never believed on trust alone."""
    rt1, rt0 = local_apps
    unknown = await _unknown_payment(rt1, sim, "nota48000", 48_000)
    gid = await _someone_elses_gid(sim)
    await deliver(rt0.url, KICKBACK_PATH, _forged(unknown, gid, amounts=False))
    [kb] = await processed(sessions, 1)
    after = await _status(sessions, unknown["id"])
    with capsys.disabled():
        print(
            f"\ntrusted success without ta: 48,000 yen payment {after.status}, kickback {kb.status}"
        )
    assert after.status == "unknown" and after.gid is None
    assert kb.trusted and kb.status == "flagged", (kb.status, kb.note)
    assert await charged(sim, "nota48000") == []


@pytest.mark.parametrize("path", ["/kickback", KICKBACK_PATH], ids=["public", "trusted"])
@pytest.mark.timeout(180)
async def test_forged_failure_of_a_charged_payment_changes_nothing(
    path: str,
    local_apps: list[AppProcess],
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A charged payment (rt=0, its kickback not here yet) gets a forged failure with its
    real gid (guessable): failing it would let the shopper pay again. Even on the trusted
    path a failure is confirmed by the charges search first."""
    rt1, rt0 = local_apps
    order = f"charged{'trusted' if path == KICKBACK_PATH else 'public'}"
    async with held_kickbacks(sim) as relay:
        cs = await new_session(rt0, order)
        r = await pay(rt0, sim, cs)
        assert r.status_code == 202, r.text
        [real] = await wait_held(relay, 1)
    victim = {**cs, "id": r.json()["id"]}
    await deliver(rt1.url, path, _forged(victim, int(params(real)["gid"]), rst=2))
    [kb] = await processed(sessions, 1)
    now = await _status(sessions, victim["id"])
    again = (await pay(rt1, sim, cs)).status_code
    with capsys.disabled():
        where = "the trusted path" if path == KICKBACK_PATH else path
        print(
            f"\nforged failure on {where}: charged payment {now.status}, kickback "
            f"{kb.status}; pay again -> {again}; {len(await charged(sim, order))} charge(s)"
        )
    assert now.status == "pending", (now.status, kb.status, kb.note)
    assert kb.status == "flagged", (kb.status, kb.note)
    assert again == 409
    # The real kickback settles it; one charge.
    await deliver(rt0.url, KICKBACK_PATH, real)
    await processed(sessions, 2)
    assert (await _status(sessions, victim["id"])).status == "captured"
    assert len(await charged(sim, order)) == 1


@pytest.mark.timeout(180)
async def test_borrowed_gids_sprayed_at_an_unpaid_order_change_nothing(
    no_allowlist_apps: list[AppProcess],
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Finding 4: 20 forged successes with gids around a known one, the attacker's order id
    and total, on /kickback (verified through the search). The victim's charged payment
    (rt=0, its kickback still on the way) holds one of those gids."""
    rt1, rt0 = no_allowlist_apps
    async with held_kickbacks(sim) as relay:
        # The attacker's own small purchase: a gid they know.
        mine = await pay(rt1, sim, await new_session(rt1, "attackersmall", amount=100))
        assert mine.status_code == 200, mine.text
        known = int((await rt1.ops.get(f"/v1/payments/{mine.json()['id']}")).json()["gid"])
        # The victim pays (rt=0): charged, the kickback not delivered yet.
        victim_cs = await new_session(rt0, "victimorder")
        victim = await pay(rt0, sim, victim_cs)
        assert victim.status_code == 202, victim.text
        [victim_kickback] = await wait_held(relay, 1)
        victim_gid = int(params(victim_kickback)["gid"])
        # The attacker's unpaid 99,000 yen order.
        order = await _unknown_payment(rt1, sim, "attacker99000", 99_000)
        searches_before = await search_calls(sessions)
        for i, gid in enumerate(range(known - 9, known + 11)):
            # Half name our payment id, half rely on cod + total.
            forged = _forged(order, gid, ref=i % 2 == 0)
            await deliver((rt1, rt0)[i % 2].url, "/kickback", forged)
        inbox = await processed(sessions, 20)
        searches = await search_calls(sessions) - searches_before
        # Then the victim's own kickback arrives.
        await deliver(rt0.url, KICKBACK_PATH, victim_kickback)
        await processed(sessions, 21)
        attacker = await _status(sessions, order["id"])
        [victim_payment] = await payments_of(sessions, "victimorder")
        with capsys.disabled():
            print(
                f"\ngid spray: attacker's 99,000 yen order {attacker.status} "
                f"(gid {attacker.gid}); victim {victim_payment.status} (gid "
                f"{victim_payment.gid}, ledger {victim_gid}); {searches} searches for 20 "
                f"forged; inbox {sorted({k.status for k in inbox[:20]})}"
            )
        assert attacker.status == "unknown" and attacker.gid is None
        assert victim_payment.status == "captured" and victim_payment.gid == victim_gid
        assert not victim_payment.needs_attention
        assert {k.status for k in inbox[:20]} <= {"flagged", "unmatched", "applied"}
        assert await charged(sim, "attacker99000") == []
        assert KICKBACK_SECRET not in str([k.raw_query for k in inbox])
