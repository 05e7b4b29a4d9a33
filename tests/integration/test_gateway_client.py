"""The ROBOT PAYMENT client against the simulator process over real HTTP, with every call
written to the audit log in PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import DbCallRecorder, GatewayCallLog
from app.gateway.base import OnetouchCharge, Outcome, Reauthorization, SearchError, TokenCharge
from app.gateway.robotpayment import RobotPaymentClient, make_http_client
from app.sandbox import cards
from app.sandbox.testing import make_token
from tests.support.pg import free_port

pytestmark = pytest.mark.integration

AID = "100001"


@pytest.fixture
async def client(
    simulator_url: str, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[RobotPaymentClient]:
    http = make_http_client(connect_timeout=2.0, read_timeout=2.0)
    yield RobotPaymentClient(
        http=http,
        base_url=simulator_url,
        aid=AID,
        search_base_url=f"{simulator_url}/api",
        search_api_key="sandbox-search-key",
        recorder=DbCallRecorder(sessions),
        deadline_seconds=5.0,
    )
    await http.aclose()


def charge(token: str, **kw: Any) -> TokenCharge:
    values: dict[str, Any] = {
        "job": "AUTH",
        "token": token,
        "amount": 1000,
        "tax": 80,
        "shipping": 500,
        "item_code": None,
        "order_id": "order1",
        "email": "taro@example.com",
        "phone": None,
        "customer_id": None,
        "extra": {},
    }
    values.update(kw)
    return TokenCharge(**values)


THREE_DS = {"am": "1000", "tx": "80", "sf": "500", "em": "taro@example.com"}


async def ledger(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await sim.get("/_sandbox/ledger")
    r.raise_for_status()
    body = r.json()
    rows: list[dict[str, Any]] = body if isinstance(body, list) else body["transactions"]
    return rows


async def test_token_payment_capture_cancel(
    client: RobotPaymentClient, sim: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    token = await make_token(sim, three_ds=THREE_DS)
    auth = await client.charge_token(charge(token), ref="pay_1")
    assert auth.outcome == Outcome.SUCCESS, auth.error
    assert auth.charge_id and auth.total == 1580 and auth.order_ref == "order1"

    cap = await client.capture(auth.charge_id, ref="pay_1")
    assert cap.outcome == Outcome.SUCCESS, cap.error
    again = await client.capture(auth.charge_id, ref="pay_1")
    assert again.outcome == Outcome.FAILED and again.error and again.error.code == "ER032"

    canceled = await client.cancel(auth.charge_id, ref="pay_1")
    assert canceled.outcome == Outcome.SUCCESS
    [row] = [r for r in await ledger(sim) if r["gid"] == auth.charge_id]
    assert row["status"] == "canceled"

    async with sessions() as session:
        calls = list(
            (
                await session.execute(
                    select(GatewayCallLog)
                    .where(GatewayCallLog.ref == "pay_1")
                    .order_by(GatewayCallLog.id)
                )
            ).scalars()
        )
    assert [c.operation for c in calls][:2] == ["charge_token", "capture"]
    assert len(calls) == 4
    first = calls[0]
    assert token not in str(first.request), "the raw token must never be stored"
    assert first.request["tkn"] != token
    assert first.http_status == 200 and first.latency_ms > 0
    assert first.response_body and first.response_body.startswith(str(auth.charge_id))


async def test_capture_job_and_check(client: RobotPaymentClient, sim: httpx.AsyncClient) -> None:
    token = await make_token(sim, three_ds=THREE_DS)
    cap = await client.charge_token(charge(token, job="CAPTURE"))
    assert cap.outcome == Outcome.SUCCESS
    [row] = [r for r in await ledger(sim) if r["gid"] == cap.charge_id]
    assert row["status"] == "captured"

    token2 = await make_token(
        sim, three_ds={"am": "0", "tx": "0", "sf": "0", "em": "taro@example.com"}
    )
    check = await client.charge_token(charge(token2, job="CHECK", amount=0, tax=0, shipping=0))
    assert check.outcome == Outcome.SUCCESS, check.error


async def test_registration_in_payment_then_onetouch_and_cards(
    client: RobotPaymentClient, sim: httpx.AsyncClient
) -> None:
    token = await make_token(sim, three_ds=THREE_DS)
    paid = await client.charge_token(charge(token, customer_id="cust001"))
    assert paid.outcome == Outcome.SUCCESS, paid.error
    assert paid.customer_id == "cust001" and paid.customer_key and paid.card_seq is not None

    token2 = await make_token(sim, three_ds=THREE_DS)
    dup = await client.charge_token(charge(token2, customer_id="cust001"))
    assert dup.outcome == Outcome.FAILED and dup.error and dup.error.code == "ER652"

    one = await client.charge_onetouch(
        OnetouchCharge(
            job="CAPTURE",
            customer_id="cust001",
            customer_key=str(paid.customer_key),
            card_seq=int(paid.card_seq),
            amount=500,
            tax=0,
            shipping=0,
            item_code=None,
            order_id="order2",
            email=None,
            phone=None,
            method=None,
            installments=None,
            extra={},
        )
    )
    assert one.outcome == Outcome.SUCCESS, one.error

    card = await client.get_card("cust001", str(paid.customer_key), int(paid.card_seq))
    assert card.outcome == Outcome.SUCCESS
    assert card.masked_number and card.masked_number.endswith("1111")
    assert "4444333322221111" not in (card.call.response_body or "")

    user = await client.get_user("cust001")
    assert user.outcome == Outcome.SUCCESS and user.customer_key == paid.customer_key


async def test_user_and_card_management(client: RobotPaymentClient, sim: httpx.AsyncClient) -> None:
    reg = await client.register_user("user42", "u42@example.com", "0312345678")
    assert reg.outcome == Outcome.SUCCESS and reg.customer_key
    dup = await client.register_user("user42", None, None)
    assert dup.error and dup.error.code == "ER652"

    upd = await client.update_user("user42", str(reg.customer_key), "new@example.com", None)
    assert upd.outcome == Outcome.SUCCESS
    looked = await client.get_user("user42")
    assert looked.email == "new@example.com"

    token = await make_token(sim, three_ds={"am": "0", "tx": "0", "sf": "0", "em": "x@y.jp"})
    card = await client.register_card("user42", str(reg.customer_key), token)
    assert card.outcome == Outcome.SUCCESS and card.card_seq is not None

    token2 = await make_token(
        sim, card=cards.CARD_DECLINE_G55, three_ds={"am": "0", "tx": "0", "sf": "0", "em": "x@y.jp"}
    )
    updated = await client.register_card(
        "user42", str(reg.customer_key), token2, card_seq=int(card.card_seq)
    )
    assert updated.outcome == Outcome.SUCCESS

    gone = await client.delete_card("user42", str(reg.customer_key), int(card.card_seq))
    assert gone.outcome == Outcome.SUCCESS
    missing = await client.get_card("user42", str(reg.customer_key), int(card.card_seq))
    assert missing.outcome == Outcome.FAILED and missing.error and missing.error.code == "ER149"

    deleted = await client.delete_user("user42", str(reg.customer_key))
    assert deleted.outcome == Outcome.SUCCESS
    after = await client.get_user("user42")
    assert after.error and after.error.code in ("ER653", "ER147")


async def test_token_errors(client: RobotPaymentClient, sim: httpx.AsyncClient) -> None:
    token = await make_token(sim, three_ds=THREE_DS)
    assert (await client.charge_token(charge(token))).outcome == Outcome.SUCCESS
    reused = await client.charge_token(charge(token))
    assert reused.outcome == Outcome.FAILED
    assert reused.error and reused.error.code == "ER584"

    expiring = await make_token(sim, three_ds=THREE_DS)
    (await sim.post("/_sandbox/clock", json={"advance_seconds": 16 * 60})).raise_for_status()
    expired = await client.charge_token(charge(expiring))
    assert expired.error and expired.error.code == "ER585"

    # The gateway refuses a card number sent with a token (ER586)...
    fresh = await make_token(sim, three_ds=THREE_DS)
    raw = await sim.post(
        "/gateway/gateway_token.aspx",
        data={
            "aid": AID,
            "jb": "AUTH",
            "rt": "1",
            "tkn": fresh,
            "cn": "4444333322221111",
            "am": "1000",
            "tx": "80",
            "sf": "500",
            "em": "taro@example.com",
        },
    )
    assert ",ER586," in raw.text
    # ...and our client never sends one, whatever a caller puts in the free fields.
    fresh2 = await make_token(sim, three_ds=THREE_DS)
    sent = await client.charge_token(charge(fresh2, extra={"cn": "4444333322221111"}))
    assert "cn" not in sent.call.request and "4444333322221111" not in str(sent.call.request)
    assert all(r["status"] != "captured" for r in await ledger(sim))


async def test_source_ip_not_allowlisted(
    client: RobotPaymentClient, sim: httpx.AsyncClient
) -> None:
    token = await make_token(sim, three_ds=THREE_DS)
    (await sim.post("/_sandbox/config", json={"allowed_ips": ["203.0.113.7"]})).raise_for_status()
    result = await client.charge_token(charge(token))
    assert result.outcome == Outcome.FAILED
    assert result.error and result.error.code == "ER003"
    assert result.error.stable_code == "source_ip_rejected"


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (cards.CARD_DECLINE_G12, "G12"),
        (cards.CARD_DECLINE_G55, "G55"),
        (cards.CARD_DECLINE_G83, "G83"),
    ],
)
async def test_declines(
    client: RobotPaymentClient, sim: httpx.AsyncClient, card: str, code: str
) -> None:
    token = await make_token(sim, card=card, three_ds=THREE_DS)
    result = await client.charge_token(charge(token))
    assert result.outcome == Outcome.DECLINED
    assert result.error and result.error.code == code
    assert result.error.message_ja and result.error.message_en


async def test_three_ds_failure_and_mismatch(
    client: RobotPaymentClient, sim: httpx.AsyncClient
) -> None:
    failing = await make_token(sim, card=cards.CARD_3DS_FAIL, three_ds=THREE_DS)
    failed = await client.charge_token(charge(failing))
    assert failed.outcome == Outcome.DECLINED and failed.error and failed.error.code == "ER900"

    mismatched = await make_token(sim, three_ds={**THREE_DS, "am": "999"})
    result = await client.charge_token(charge(mismatched))
    assert result.outcome == Outcome.DECLINED and result.error and result.error.code == "ER901"
    assert await ledger(sim) == [] or all(r["status"] == "declined" for r in await ledger(sim))


async def test_timeout_after_charge_is_unknown_not_failed(
    client: RobotPaymentClient, sim: httpx.AsyncClient
) -> None:
    (await sim.post("/_sandbox/config", json={"hang_seconds": 8})).raise_for_status()
    token = await make_token(sim, card=cards.CARD_TIMEOUT, three_ds=THREE_DS)
    result = await client.charge_token(charge(token, order_id="ordertimeout"))
    assert result.outcome == Outcome.UNKNOWN
    assert result.error is not None and result.error.code == "timeout"
    # The simulator did charge: only reconciliation may settle this, never a blind retry.
    rows = [r for r in await ledger(sim) if r["cod"] == "ordertimeout"]
    assert len(rows) == 1 and rows[0]["status"] == "authorized"
    found = await client.search_charges(
        created_from=None, created_to=None, charge_id=rows[0]["gid"]
    )
    assert [r.charge_id for r in found] == [rows[0]["gid"]]


@pytest.mark.parametrize("search_read_timeout", [None, 3.0])
async def test_the_charges_search_may_wait_longer_than_a_charge(
    simulator_url: str,
    sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    search_read_timeout: float | None,
) -> None:
    """SEARCH_API_READ_TIMEOUT: a search slower than the charge timeout still answers (a
    timed-out one would only defer a kickback's confirmation); unset, the client's own."""
    http = make_http_client(connect_timeout=1.0, read_timeout=0.5)
    slow = RobotPaymentClient(
        http=http,
        base_url=simulator_url,
        aid=AID,
        search_base_url=f"{simulator_url}/api",
        search_api_key="sandbox-search-key",
        search_read_timeout=search_read_timeout,
        recorder=DbCallRecorder(sessions),
        deadline_seconds=2.0,
        retry_delays=(),
    )
    try:
        token = await make_token(sim, three_ds=THREE_DS)
        paid = await slow.charge_token(charge(token, order_id="orderslowsearch"))
        assert paid.outcome == Outcome.SUCCESS and paid.charge_id, paid
        (await sim.post("/_sandbox/config", json={"search_slow_seconds": 1.0})).raise_for_status()
        if search_read_timeout is None:
            with pytest.raises(SearchError) as refused:
                await slow.search_charges(charge_id=paid.charge_id)
            assert refused.value.error.code == "timeout"
        else:
            found = await slow.search_charges(charge_id=paid.charge_id)
            assert [r.charge_id for r in found] == [paid.charge_id]
    finally:
        await http.aclose()


async def test_connection_refused_is_unavailable(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    http = make_http_client(connect_timeout=1.0, read_timeout=1.0)
    dead = RobotPaymentClient(
        http=http,
        base_url=f"http://127.0.0.1:{free_port()}",
        aid=AID,
        search_base_url="http://127.0.0.1:9/api",
        search_api_key="k",
        recorder=DbCallRecorder(sessions),
    )
    try:
        result = await dead.charge_token(charge("dG9rZW4tbmV2ZXItc2VudA=="))
    finally:
        await http.aclose()
    assert result.outcome == Outcome.UNAVAILABLE
    assert result.error and result.error.retryable


async def test_reauthorize(client: RobotPaymentClient, sim: httpx.AsyncClient) -> None:
    token = await make_token(sim, three_ds=THREE_DS)
    auth = await client.charge_token(charge(token))
    assert auth.charge_id
    re = await client.reauthorize(
        Reauthorization(
            charge_id=auth.charge_id, amount=1200, tax=96, shipping=500, email=None, phone=None
        )
    )
    assert re.outcome == Outcome.SUCCESS, re.error
    assert re.charge_id and re.charge_id != auth.charge_id
    rows = {r["gid"]: r for r in await ledger(sim)}
    assert rows[auth.charge_id]["status"] == "canceled"
    assert rows[re.charge_id]["status"] == "authorized" and rows[re.charge_id]["ta"] == 1796


async def test_rt0_payment_is_pending_and_kicks_back(
    simulator_url: str, sim: httpx.AsyncClient
) -> None:
    """rt=0: the answer is only OK, the result arrives as a GET to the kickback URL."""
    received: list[str] = []

    async def kickback_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        received.append(scope["query_string"].decode())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"OK"})

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(kickback_app, host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        (
            await sim.post(
                "/_sandbox/config", json={"kickback_url": f"http://127.0.0.1:{port}/kickback"}
            )
        ).raise_for_status()
        http = make_http_client(connect_timeout=2.0, read_timeout=2.0)
        rt0 = RobotPaymentClient(
            http=http,
            base_url=simulator_url,
            aid=AID,
            result_mode=0,
            search_base_url=f"{simulator_url}/api",
            search_api_key="sandbox-search-key",
        )
        token = await make_token(sim, three_ds=THREE_DS)
        result = await rt0.charge_token(charge(token, order_id="rt0order"))
        await http.aclose()
        assert result.outcome == Outcome.PENDING
        for _ in range(100):
            if received:
                break
            await asyncio.sleep(0.05)
        assert received and "cod=rt0order" in received[0] and "rst=1" in received[0]
    finally:
        server.should_exit = True
        await task
