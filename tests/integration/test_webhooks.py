"""Webhooks (issue 18): endpoints, signed deliveries in order, retries, giving up, SSRF
refusals, rolled secrets, redelivery, the record; the app under uvicorn, the simulator process
and a real receiver over HTTP, real PostgreSQL. Signatures are checked with the README's own
receiver code."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.models import EventDelivery, WebhookEndpoint
from app.sandbox.testing import make_token
from tests.integration.test_checkout import SESSION, new_session, three_ds_of
from tests.support.fixtures import ROOT, AppFactory, RunningApp
from tests.support.receiver import Receiver

pytestmark = pytest.mark.integration

FAST = {"webhook_retry_base_seconds": 0.2, "webhook_poll_seconds": 0.1}


def readme_verify() -> Callable[..., bool]:
    """`verify` from the README's receiver, run as written."""
    block = re.search(
        r"<!-- receiver -->\n```python\n(.*?)^```", (ROOT / "README.md").read_text(), re.S | re.M
    )
    assert block is not None, "the README's receiver example is gone"
    scope: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), scope)  # our own README's code
    fn: Callable[..., bool] = scope["verify"]
    return fn


verify = readme_verify()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def add_endpoint(app: RunningApp, url: str, **body: Any) -> dict[str, Any]:
    r = await app.merchant.post("/v1/webhook-endpoints", json={"url": url, **body})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    return data


async def pay(app: RunningApp, sim: httpx.AsyncClient, **overrides: Any) -> tuple[str, str]:
    cs = await new_session(app, **overrides)
    token = await make_token(sim, three_ds=three_ds_of({**SESSION, **overrides}))
    r = await app.client.post(f"/v1/checkout/sessions/{cs['id']}/pay", json={"token": token})
    assert r.status_code == 200, r.text
    return cs["id"], r.json()["id"]


async def until(check: Callable[[], Any], within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        got = await check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.1)


async def test_signed_events_reach_the_endpoint_in_order_and_match_the_record(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = await make_app(**FAST)
    created = await add_endpoint(app, receiver.url, description="shop backend")
    secret = created["secret"]
    assert secret.startswith("whsec_") and created["event_types"] == []
    # Shown once: never in a list, a read, or the database.
    listed = (await app.merchant.get("/v1/webhook-endpoints")).json()["data"]
    assert [e["id"] for e in listed] == [created["id"]] and "secret" not in listed[0]
    one = await app.merchant.get(f"/v1/webhook-endpoints/{created['id']}")
    assert one.status_code == 200 and "secret" not in one.json()
    async with sessions() as session:
        stored = (await session.execute(text("SELECT secret FROM webhook_endpoints"))).scalar()
    assert stored and secret not in stored and secret.removeprefix("whsec_") not in stored

    cs_id, pid = await pay(app, sim)
    assert (await app.ops.post(f"/v1/payments/{pid}/capture")).status_code == 200
    got = await receiver.wait_for(3)
    told = [(d.event["type"], d.event["object_id"]) for d in got]
    assert sorted(told) == sorted(
        [
            ("payment.authorized", pid),
            ("checkout.session.completed", cs_id),
            ("payment.captured", pid),
        ]
    )
    # The payment's own events in the order they happened.
    assert [t for t, o in told if o == pid] == ["payment.authorized", "payment.captured"]
    for d in got:
        assert verify(secret, d.headers["rp-signature"], d.body)
        assert not verify(secret, d.headers["rp-signature"], d.body + b" ")
        assert not verify("whsec_wrong", d.headers["rp-signature"], d.body)
        assert d.headers["rp-event-id"] == d.event["id"]
        assert d.headers["content-type"] == "application/json"
        # The body is the record's event, exactly.
        shown = (await app.merchant.get(f"/v1/events/{d.event['id']}")).json()
        assert {k: v for k, v in shown.items() if k != "deliveries"} == d.event
    captured = got[-1].event if got[-1].event["type"] == "payment.captured" else None
    if captured is not None:
        assert captured["data"]["status"] == "captured" and captured["data"]["id"] == pid
    # A stale signature (older than the tolerance) is refused by the README's receiver.
    old = int(time.time()) - 600
    assert not verify(secret, f"t={old},v1=00", got[0].body)

    detail = await until(
        lambda: _delivered_detail(app, got[0].event["id"]),
    )
    [delivery] = detail["deliveries"]
    assert delivery["endpoint_id"] == created["id"] and delivery["attempts"] == 1
    [attempt] = delivery["history"]
    assert attempt["http_status"] == 200 and attempt["response_excerpt"] == "ok"
    assert attempt["latency_ms"] >= 0

    # The record: newest first, filters, a cursor.
    page = (await app.merchant.get("/v1/events", params={"limit": 2})).json()
    assert page["data"][0]["type"] == "payment.captured" and page["next_cursor"]
    rest = (
        await app.merchant.get("/v1/events", params={"limit": 2, "cursor": page["next_cursor"]})
    ).json()
    ids = [e["id"] for e in page["data"] + rest["data"]]
    assert len(ids) == len(set(ids)) == 3 and rest["next_cursor"] is None
    only = (await app.merchant.get("/v1/events", params={"object_id": pid})).json()["data"]
    assert [e["type"] for e in only] == ["payment.captured", "payment.authorized"]
    typed = await app.merchant.get("/v1/events", params={"type": "checkout.session.completed"})
    assert [e["object_id"] for e in typed.json()["data"]] == [cs_id]
    bad = await app.merchant.get("/v1/events", params={"cursor": "nope"})
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]
    unknown = await app.merchant.get("/v1/events", params={"type": "payment.teleported"})
    assert unknown.status_code == 422
    assert (await app.merchant.get(f"/v1/events/evt_{'0' * 32}")).status_code == 404
    assert (await app.client.get("/v1/events")).status_code == 401


async def _delivered_detail(app: RunningApp, event_id: str) -> dict[str, Any] | None:
    detail: dict[str, Any] = (await app.merchant.get(f"/v1/events/{event_id}")).json()
    if detail["deliveries"] and detail["deliveries"][0]["status"] == "delivered":
        return detail
    return None


async def test_an_endpoint_gets_only_the_types_it_asked_for_and_nothing_while_disabled(
    make_app: AppFactory, sim: httpx.AsyncClient, receiver: Receiver
) -> None:
    app = await make_app(**FAST)
    ep = await add_endpoint(app, receiver.url, event_types=["payment.captured"])
    _, first = await pay(app, sim, order_id="typed1")
    assert (await app.ops.post(f"/v1/payments/{first}/capture")).status_code == 200
    [d] = await receiver.wait_for(1)
    assert (d.event["type"], d.event["object_id"]) == ("payment.captured", first)

    r = await app.merchant.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    _, second = await pay(app, sim, order_id="typed2")
    assert (await app.ops.post(f"/v1/payments/{second}/capture")).status_code == 200
    await asyncio.sleep(1.0)
    assert len(receiver.got) == 1
    dup = await app.merchant.post(
        "/v1/webhook-endpoints",
        json={"url": receiver.url, "event_types": ["payment.failed", "payment.failed"]},
    )
    assert dup.status_code == 422
    wrong = await app.merchant.post(
        "/v1/webhook-endpoints", json={"url": receiver.url, "event_types": ["payment.lost"]}
    )
    assert wrong.status_code == 422


async def test_a_failing_receiver_is_retried_and_a_payments_later_events_wait(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = await make_app(**FAST)
    ep = await add_endpoint(
        app, receiver.url, event_types=["payment.authorized", "payment.captured"]
    )
    receiver.status = 500
    _, pid = await pay(app, sim, order_id="retry1")
    assert (await app.ops.post(f"/v1/payments/{pid}/capture")).status_code == 200

    async def attempts() -> list[dict[str, Any]] | None:
        rows = (await app.merchant.get("/v1/events", params={"object_id": pid})).json()["data"]
        authorized = next(e for e in rows if e["type"] == "payment.authorized")
        detail = (await app.merchant.get(f"/v1/events/{authorized['id']}")).json()
        history: list[dict[str, Any]] = detail["deliveries"][0]["history"]
        return history if len(history) >= 3 else None

    history = await until(attempts)
    assert {a["http_status"] for a in history} == {500}
    assert history[0]["response_excerpt"] == "boom"
    # The capture waited behind the authorization: never attempted.
    async with sessions() as session:
        counts: dict[str, int] = dict(
            (
                await session.execute(
                    text(
                        "SELECT e.type, d.attempts FROM event_deliveries d "
                        "JOIN events e ON e.id = d.event_id WHERE e.object_id = :pid"
                    ),
                    {"pid": pid},
                )
            ).all()
        )
    assert counts["payment.captured"] == 0 and counts["payment.authorized"] >= 3

    receiver.status = 200
    got = await receiver.wait_for(2)
    assert [d.event["type"] for d in got] == ["payment.authorized", "payment.captured"]
    shown = (await app.merchant.get(f"/v1/webhook-endpoints/{ep['id']}")).json()
    assert shown["failing_since"] is None


async def test_a_delivery_is_given_up_on_the_endpoint_marked_failing_then_redelivered(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A retry window of about a second: the second failure is past it.
    app = await make_app(**FAST, webhook_retry_hours=0.0003)
    ep = await add_endpoint(app, receiver.url, event_types=["payment.authorized"])
    receiver.status = 503
    events_log = logging.getLogger("app.events")
    events_log.addHandler(caplog.handler)
    try:
        _, pid = await pay(app, sim, order_id="giveup1")
        await until(lambda: _failing(app, ep["id"]))
    finally:
        events_log.removeHandler(caplog.handler)
    [event] = (await app.merchant.get("/v1/events", params={"object_id": pid})).json()["data"]
    detail = (await app.merchant.get(f"/v1/events/{event['id']}")).json()
    assert detail["deliveries"][0]["status"] == "failed"
    assert any(
        r.levelname == "ERROR" and "gave up on event" in r.getMessage() for r in caplog.records
    )
    metrics = (await app.client.get("/metrics")).text
    assert 'rp_webhook_deliveries_total{outcome="failed"}' in metrics
    assert "rp_db_webhook_endpoints_failing 1.0" in metrics

    receiver.status = 200
    r = await app.merchant.post(f"/v1/events/{event['id']}/redeliver")
    assert r.status_code == 202 and r.json() == {"event_id": event["id"], "deliveries": 1}
    [d] = await receiver.wait_for(1)
    assert d.event["id"] == event["id"]
    await until(lambda: _not_failing(app, ep["id"]))
    missing = await app.merchant.post(f"/v1/events/evt_{'1' * 32}/redeliver")
    assert missing.status_code == 404


async def _failing(app: RunningApp, endpoint_id: str) -> bool:
    shown = (await app.merchant.get(f"/v1/webhook-endpoints/{endpoint_id}")).json()
    return shown["failing_since"] is not None


async def _not_failing(app: RunningApp, endpoint_id: str) -> bool:
    shown = (await app.merchant.get(f"/v1/webhook-endpoints/{endpoint_id}")).json()
    return shown["failing_since"] is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://10.1.2.3/hooks", "private"),
        ("http://169.254.169.254/latest/meta-data", "private, link-local"),
        ("http://[::ffff:192.168.0.1]/hooks", "private"),
        ("http://0.0.0.0:9/hooks", "private"),
        ("ftp://shop.example/hooks", "http"),
        ("https://user:pw@8.8.8.8/hooks", "user name"),
        ("https://no-such-host.invalid/hooks", "could not be resolved"),
    ],
)
async def test_an_endpoint_that_could_reach_inside_is_refused(
    make_app: AppFactory, url: str, says: str
) -> None:
    app = await make_app()
    r = await app.merchant.post("/v1/webhook-endpoints", json={"url": url})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["errors"][0]["field"] == "url" and says in problem["errors"][0]["message"]


async def test_loopback_is_refused_where_not_allowed_and_rechecked_at_delivery(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    strict = await make_app(webhook_allow_loopback=False)
    r = await strict.merchant.post("/v1/webhook-endpoints", json={"url": receiver.url})
    assert r.status_code == 422 and "loopback" in r.json()["errors"][0]["message"]

    # Allowed when it was made; the name now points inside (as a rebinding DNS would): the
    # delivery is refused before any connection, and recorded so.
    app = await make_app(**FAST)
    ep = await add_endpoint(app, receiver.url, event_types=["payment.authorized"])
    async with sessions() as session:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == ep["id"])
            .values(url="http://10.0.0.7/hooks")
        )
        await session.commit()
    _, pid = await pay(app, sim, order_id="rebind1")

    async def refused() -> list[dict[str, Any]] | None:
        [event] = (await app.merchant.get("/v1/events", params={"object_id": pid})).json()["data"]
        detail = (await app.merchant.get(f"/v1/events/{event['id']}")).json()
        history: list[dict[str, Any]] = detail["deliveries"][0]["history"]
        return history or None

    history = await until(refused)
    assert history[0]["http_status"] is None and "10.0.0.7" in history[0]["error"]
    assert receiver.got == []


async def test_a_rolled_secret_overlaps_and_a_deleted_endpoint_is_owed_nothing(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    app = await make_app(**FAST)
    ep = await add_endpoint(app, receiver.url, event_types=["payment.authorized"])
    r = await app.merchant.post(
        f"/v1/webhook-endpoints/{ep['id']}/roll-secret", json={"overlap_hours": 1}
    )
    assert r.status_code == 200, r.text
    rolled = r.json()
    assert rolled["secret"] != ep["secret"] and rolled["previous_secret_expires_at"]
    await pay(app, sim, order_id="roll1")
    [d] = await receiver.wait_for(1)
    header = d.headers["rp-signature"]
    assert header.count("v1=") == 2
    assert verify(rolled["secret"], header, d.body) and verify(ep["secret"], header, d.body)

    r = await app.merchant.post(
        f"/v1/webhook-endpoints/{ep['id']}/roll-secret", json={"overlap_hours": 0}
    )
    newest = r.json()["secret"]
    await pay(app, sim, order_id="roll2")
    got = await receiver.wait_for(2)
    assert got[1].headers["rp-signature"].count("v1=") == 1
    assert verify(newest, got[1].headers["rp-signature"], got[1].body)
    assert not verify(rolled["secret"], got[1].headers["rp-signature"], got[1].body)

    receiver.status = 500
    await pay(app, sim, order_id="roll3")
    await asyncio.sleep(0.5)
    assert (await app.merchant.delete(f"/v1/webhook-endpoints/{ep['id']}")).status_code == 204
    assert (await app.merchant.get(f"/v1/webhook-endpoints/{ep['id']}")).status_code == 404
    assert (await app.merchant.delete(f"/v1/webhook-endpoints/{ep['id']}")).status_code == 404
    async with sessions() as session:
        pending = (
            await session.execute(
                select(EventDelivery).where(
                    EventDelivery.endpoint_id == ep["id"], EventDelivery.status == "pending"
                )
            )
        ).all()
    assert pending == []
    bad = await app.merchant.post(f"/v1/webhook-endpoints/we_{'0' * 32}/roll-secret")
    assert bad.status_code == 404


async def test_the_success_url_gets_the_session_id(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app()
    url = "https://shop.example/thanks?cs={CHECKOUT_SESSION_ID}"
    cs_id, _ = await pay(app, sim, order_id="thanks1", success_url=url)
    status = (await app.client.get(f"/checkout/{cs_id}/status")).json()
    assert status["redirect_url"] == f"https://shop.example/thanks?cs={cs_id}"


async def test_the_demo_shop_hears_of_its_own_orders(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    app = await make_app(**FAST)
    r = await app.client.post("/demo/checkout", data={"email": "demo@example.com"})
    assert r.status_code == 303, r.text
    cs_id = r.headers["location"].rsplit("/", 1)[1]
    token = await make_token(
        sim, three_ds={"am": "1000", "tx": "0", "sf": "0", "em": "demo@example.com"}
    )
    paid = await app.client.post(f"/v1/checkout/sessions/{cs_id}/pay", json={"token": token})
    assert paid.status_code == 200, paid.text

    async def shown() -> str | None:
        page = (await app.client.get("/demo/events")).text
        return page if "checkout.session.completed" in page else None

    page = await until(shown)
    assert "payment.captured" in page and cs_id in page
    # A forged delivery is refused by the shop.
    forged = await app.client.post(
        "/demo/events", content=b'{"id":"evt_x"}', headers={"RP-Signature": "t=1,v1=00"}
    )
    assert forged.status_code == 400


async def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_timeout(
    make_app: AppFactory, sim: httpx.AsyncClient
) -> None:
    """A byte every 0.3 s never trips a per-read timeout; the attempt's own limit does."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        try:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.3)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        app = await make_app(**FAST, webhook_timeout_seconds=1.0)
        await add_endpoint(app, f"http://127.0.0.1:{port}/h", event_types=["payment.authorized"])
        _, pid = await pay(app, sim, order_id="trickle1")

        async def attempted() -> list[dict[str, Any]] | None:
            rows = (await app.merchant.get("/v1/events", params={"object_id": pid})).json()
            detail = (await app.merchant.get(f"/v1/events/{rows['data'][0]['id']}")).json()
            history: list[dict[str, Any]] = detail["deliveries"][0]["history"]
            return history or None

        [first, *_] = await until(attempted)
        assert first["error"] == "timed out" and first["http_status"] is None
        assert 900 <= first["latency_ms"] < 3000, first
    finally:
        server.close()
        await server.wait_closed()


async def test_old_events_are_purged_with_their_deliveries_and_attempts(
    make_app: AppFactory,
    sim: httpx.AsyncClient,
    receiver: Receiver,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    from app.events.dispatch import purge

    app = await make_app(**FAST)
    await add_endpoint(app, receiver.url)
    _, old_pid = await pay(app, sim, order_id="purge1")
    await receiver.wait_for(2)
    async with sessions() as session:
        await session.execute(
            text("UPDATE events SET created_at = now() - interval '31 days' WHERE object_id = :p"),
            {"p": old_pid},
        )
        await session.commit()
    _, new_pid = await pay(app, sim, order_id="purge2")
    await receiver.wait_for(4)
    assert await purge(sessions, datetime.now(UTC) - timedelta(days=30)) == 1
    async with sessions() as session:
        left = (await session.execute(text("SELECT object_id FROM events"))).scalars().all()
        orphans = await session.scalar(
            text(
                "SELECT count(*) FROM event_deliveries d WHERE NOT EXISTS "
                "(SELECT 1 FROM events e WHERE e.id = d.event_id)"
            )
        )
        stray = await session.scalar(
            text(
                "SELECT count(*) FROM delivery_attempts a WHERE NOT EXISTS "
                "(SELECT 1 FROM event_deliveries d WHERE d.seq = a.delivery_seq)"
            )
        )
    assert old_pid not in left and new_pid in left and orphans == stray == 0
