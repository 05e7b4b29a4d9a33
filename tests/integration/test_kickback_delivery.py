"""Kickback delivery against the simulator process over HTTP: our answer is accepted (HTTP 200,
non-empty body, seed 002), a kickback that was not accepted is re-sent when the sandbox clock
reaches the re-send time, and a re-sent one is applied once, on one replica or two (issue 17)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.payments.models import PaymentEvent
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.integration.test_kickback_mode import kickback_rows
from tests.integration.test_kickbacks import payment, settled
from tests.support.fixtures import KICKBACK_PATH, AppFactory, RunningApp
from tests.support.pg import free_port

pytestmark = pytest.mark.integration

HOUR = 3600
# What the front does with one kickback: not reach the app and answer 500 (down), not reach it
# and answer 200 with no body, reach it and lose its answer (502), or pass it through.
Behaviour = Literal["down", "empty", "lost", "pass"]


@dataclass
class Front:
    """A load balancer in front of the app replicas, at the simulator's kickback URL."""

    targets: list[str] = field(default_factory=list)
    plan: list[Behaviour] = field(default_factory=list)
    seen: list[tuple[Behaviour, str | None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._next = itertools.count()
        self._client = httpx.AsyncClient(timeout=10)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        behaviour: Behaviour = self.plan.pop(0) if self.plan else "pass"
        query = bytes(scope.get("query_string", b""))
        target = None
        status, body = {"down": (500, b"down"), "empty": (200, b"")}.get(behaviour, (0, b""))
        if behaviour in ("lost", "pass"):
            target = self.targets[next(self._next) % len(self.targets)]
            url = httpx.URL(f"{target}{KICKBACK_PATH}", query=query)
            answer = await self._client.get(url)
            status, body = (
                (502, b"bad gateway")
                if behaviour == "lost"
                else (
                    answer.status_code,
                    answer.content,
                )
            )
        self.seen.append((behaviour, target))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def front() -> AsyncIterator[Front]:
    front = Front()
    server = uvicorn.Server(
        uvicorn.Config(front, host="127.0.0.1", port=front.port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.02)
    yield front
    server.should_exit = True
    await task
    await front._client.aclose()


async def rt0_app(make_app: AppFactory) -> RunningApp:
    # No early status check or janitor pass during the test: only a kickback settles the pay.
    return await make_app(
        gateway_result_mode=0, kickback_expected_seconds=600, reconcile_interval_seconds=600
    )


async def pay_rt0(app: RunningApp, sim: httpx.AsyncClient) -> str:
    cs = await new_session(app)
    token = await make_token(sim, three_ds=three_ds_of(SESSION))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    return str(r.json()["id"])


async def deliveries(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = (await sim.get("/_sandbox/kickbacks/deliveries")).json()
    return body


async def delivery_in(sim: httpx.AsyncClient, *states: str) -> dict[str, Any]:
    """The one delivery, once it is in one of `states` (sending ends within seconds)."""
    for _ in range(200):
        found = await deliveries(sim)
        if found and found[0]["state"] in states:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no delivery reached {states}: {await deliveries(sim)}")


async def authorized_events(sessions: async_sessionmaker[AsyncSession], pid: str) -> int:
    async with sessions() as s:
        rows = await s.execute(
            select(PaymentEvent).where(
                PaymentEvent.payment_id == pid, PaymentEvent.to_status == "authorized"
            )
        )
        return len(list(rows.scalars()))


async def settles(sessions: async_sessionmaker[AsyncSession], pid: str) -> str:
    for _ in range(200):
        p = await payment(sessions, pid)
        if p.status != "pending":
            return p.status
        await asyncio.sleep(0.05)
    return (await payment(sessions, pid)).status


async def test_our_answer_is_accepted_and_sent_once(
    make_app: AppFactory, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    app = await rt0_app(make_app)
    url = f"{app.url}{KICKBACK_PATH}"
    (await sim.post("/_sandbox/config", json={"kickback_url": url})).raise_for_status()
    pid = await pay_rt0(app, sim)
    delivery = await delivery_in(sim, "accepted", "waiting", "given_up")
    assert delivery["state"] == "accepted"
    [attempt] = delivery["attempts"]
    assert (attempt["status"], attempt["body"], attempt["accepted"]) == (200, "OK", True)
    assert await settles(sessions, pid) == "authorized"
    # Accepted: the clock running on sends nothing more.
    (await sim.post("/_sandbox/clock", json={"advance_seconds": 6 * HOUR})).raise_for_status()
    await asyncio.sleep(0.5)
    assert len((await deliveries(sim))[0]["attempts"]) == 1
    assert [k.status for k in await kickback_rows(sessions)] == ["applied"]


@pytest.mark.parametrize("first", ["down", "empty"])
async def test_a_kickback_not_accepted_is_resent_and_applied_once(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    front: Front,
    first: Behaviour,
) -> None:
    """The app is down at the first send (500), or something in front of it answers 200 with
    no body: not accepted. An hour later on the sandbox clock the simulator sends it again and
    the payment, still pending, is settled by it once."""
    app = await rt0_app(make_app)
    front.targets, front.plan = [app.url], [first]
    config = {"kickback_url": f"{front.url}/kickback"}
    (await sim.post("/_sandbox/config", json=config)).raise_for_status()
    pid = await pay_rt0(app, sim)
    delivery = await delivery_in(sim, "waiting", "accepted", "given_up")
    assert delivery["state"] == "waiting" and delivery["attempts"][0]["accepted"] is False
    assert (await payment(sessions, pid)).status == "pending"
    assert await kickback_rows(sessions) == []

    (await sim.post("/_sandbox/clock", json={"advance_seconds": HOUR})).raise_for_status()
    delivery = await delivery_in(sim, "accepted", "given_up")
    assert delivery["state"] == "accepted" and delivery["resends"] == 1
    assert [a["accepted"] for a in delivery["attempts"]] == [False, True]
    assert await settles(sessions, pid) == "authorized"
    await settled(sessions)
    assert [k.status for k in await kickback_rows(sessions)] == ["applied"]
    assert await authorized_events(sessions, pid) == 1
    [row] = [r for r in (await sim.get("/_sandbox/ledger")).json() if r["cod"]]
    assert [a["accepted"] for a in row["kickbacks"]] == [False, True]


async def test_resends_to_two_replicas_apply_once(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    front: Front,
) -> None:
    """Two replicas on one database behind the front. The gateway's two copies reach replica
    a and b but both answers are lost (502), so the simulator re-sends: that one reaches a
    again. Three notices stored, one applied, the others duplicates; one transition."""
    a, b = await rt0_app(make_app), await rt0_app(make_app)
    front.targets, front.plan = [a.url, b.url], ["lost", "lost", "pass"]
    config = {"kickback_url": f"{front.url}/kickback", "kickback_duplicates": 2}
    (await sim.post("/_sandbox/config", json=config)).raise_for_status()
    pid = await pay_rt0(a, sim)
    delivery = await delivery_in(sim, "waiting", "accepted", "given_up")
    assert delivery["state"] == "waiting"
    assert [(x["kind"], x["status"]) for x in delivery["attempts"]] == [
        ("first", 502),
        ("duplicate", 502),
    ]
    assert await settles(sessions, pid) == "authorized"  # applied by a copy whose answer was lost

    (await sim.post("/_sandbox/clock", json={"advance_seconds": HOUR})).raise_for_status()
    delivery = await delivery_in(sim, "accepted", "given_up")
    assert delivery["state"] == "accepted"
    assert [target for _, target in front.seen] == [a.url, b.url, a.url]
    await settled(sessions)
    statuses = sorted(k.status for k in await kickback_rows(sessions))
    assert statuses == ["applied", "duplicate", "duplicate"], statuses
    assert await authorized_events(sessions, pid) == 1
    assert (await payment(sessions, pid)).status == "authorized"
