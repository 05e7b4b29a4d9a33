"""The SBPS client (SbpsGateway) against the SBPS simulator process over real HTTP: charges,
their outcomes when things go wrong, stored cards, and an audit record of every call with
nothing secret or card-shaped in it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.audit import DbCallRecorder, GatewayCallLog
from app.gateway.base import (
    ChargeQuery,
    ChargeStatus,
    ErrorKind,
    GatewayCall,
    OnetouchCharge,
    Outcome,
    SearchError,
    TokenCharge,
)
from app.gateway.http import make_http_client
from app.gateway.sbps import HashKey
from app.gateway.sbps.client import SbpsGateway
from app.sandbox.sbps.cards import CARD_DECLINE_G12, CARD_OK, CARD_TIMEOUT
from app.sandbox.sbps.testing import TokenPair, make_token
from tests.support import sbps
from tests.support.carddata import CARD_NUMBERS, find_card_data
from tests.support.pg import free_port

pytestmark = pytest.mark.integration


class Calls(list[GatewayCall]):
    """An in-memory CallRecorder: the calls in order."""

    async def __call__(self, call: GatewayCall) -> None:
        self.append(call)

    def operations(self) -> list[str]:
        return [c.operation for c in self]


@pytest.fixture
def calls() -> Calls:
    return Calls()


def gateway_for(url: str, calls: Calls, http: httpx.AsyncClient) -> SbpsGateway:
    return SbpsGateway(
        http=http,
        base_url=url,
        merchant_id=sbps.MERCHANT_ID,
        service_id=sbps.SERVICE_ID,
        hash_key=HashKey(sbps.HASH_KEY),
        recorder=calls,
        deadline_seconds=5.0,
        retry_delays=(0.05,),
    )


@pytest.fixture
async def gateway(
    sbps_simulator_url: str, sbps_sim: httpx.AsyncClient, calls: Calls
) -> AsyncIterator[SbpsGateway]:
    http = make_http_client(connect_timeout=1.0, read_timeout=1.5)
    yield gateway_for(sbps_simulator_url, calls, http)
    await http.aclose()


async def ledger(sim: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await sim.get("_sandbox/ledger")
    r.raise_for_status()
    rows: list[dict[str, Any]] = r.json()
    return rows


def charge(pair: TokenPair, **kw: Any) -> TokenCharge:
    values: dict[str, Any] = {
        "job": "AUTH",
        "token": pair.token,
        "token_key": pair.token_key,
        "amount": 1000,
        "tax": 80,
        "shipping": 500,
        "order_id": "order1",
    }
    values.update(kw)
    return TokenCharge(**values)


def assert_clean(calls: Calls, *secrets: str) -> None:
    """No token, token key, hash key, Authorization value or card number in any record."""
    assert calls
    forbidden = [sbps.HASH_KEY, *secrets]
    for call in calls:
        text = json.dumps(call.request, ensure_ascii=False) + (call.response_body or "")
        assert find_card_data(text) == [], (call.operation, find_card_data(text))
        for secret in forbidden:
            assert secret not in text, call.operation
        assert "Basic " + sbps.MERCHANT_ID not in text or call.request["authorization"].endswith(
            ":***"
        )
        for number in CARD_NUMBERS:
            assert number not in text


async def test_token_auth_commits_once(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    pair = await make_token(sbps_sim)
    result = await gateway.charge_token(charge(pair), ref="pay_1")
    assert result.outcome is Outcome.SUCCESS, result.error
    assert result.charge_id is not None and len(str(result.charge_id)) == 14
    assert result.gateway_order_code and len(result.gateway_order_code) == 32
    assert result.approval_code
    assert calls.operations() == ["charge_token", "commit"]
    [row] = await ledger(sbps_sim)
    assert row["tracking_id"] == str(result.charge_id)
    assert row["sps_transaction_id"] == result.gateway_order_code
    assert (row["amount"], row["commit_status"], row["payment_status"]) == (1580, "1", "1")
    assert row["cust_code"] == "guest-order1" and row["dealings_type"] == "10"
    # Ids and dates stay readable in the audit (masking by element name).
    assert calls[0].request["request_date"].isdigit()
    assert str(result.charge_id) in (calls[0].response_body or "")
    assert calls[1].request["tracking_id"] == str(result.charge_id)
    assert all(c.ref == "pay_1" for c in calls)
    assert_clean(calls, pair.token, pair.token_key)
    [record] = await gateway.search_charges(charge_id=result.charge_id)
    assert record.status is ChargeStatus.AUTHORIZED and record.card_last4 == CARD_OK[-4:]
    assert record.brand == "visa"


async def test_token_capture_sells_and_installments(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    pair = await make_token(sbps_sim)
    result = await gateway.charge_token(
        charge(pair, job="CAPTURE", method="61", installments=3), ref="pay_2"
    )
    assert result.outcome is Outcome.SUCCESS, result.error
    assert calls.operations() == ["charge_token", "commit", "sales"]
    [row] = await ledger(sbps_sim)
    assert (row["payment_status"], row["sold_amount"], row["balance"]) == ("2", 1580, 1580)
    assert (row["dealings_type"], row["divide_times"]) == ("61", "3")
    [record] = await gateway.search_charges(charge_id=result.charge_id)
    assert record.status is ChargeStatus.CAPTURED and record.job == "CAPTURE"
    assert_clean(calls, pair.token, pair.token_key)


async def test_decline_is_declined_and_not_committed(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    pair = await make_token(sbps_sim, card=CARD_DECLINE_G12)
    result = await gateway.charge_token(charge(pair))
    assert result.outcome is Outcome.DECLINED
    assert result.error is not None and result.error.kind is ErrorKind.DECLINED
    assert result.charge_id is None
    assert calls.operations() == ["charge_token"]
    [row] = await ledger(sbps_sim)
    assert row["approved"] is False
    # Both languages readable, and from describe_error too.
    assert "card" in result.error.message_en and "カード" in result.error.message_ja
    assert gateway.describe_error(result.error.code) == result.error
    assert_clean(calls, pair.token, pair.token_key)


async def test_token_reuse_and_expiry(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    pair = await make_token(sbps_sim)
    assert (await gateway.charge_token(charge(pair))).outcome is Outcome.SUCCESS
    again = await gateway.charge_token(charge(pair, order_id="order2"))
    assert again.outcome is Outcome.FAILED
    assert again.error is not None and again.error.kind is ErrorKind.TOKEN_INVALID
    (await sbps_sim.post("_sandbox/config", json={"token_ttl_seconds": 0})).raise_for_status()
    stale = await make_token(sbps_sim)
    expired = await gateway.charge_token(charge(stale, order_id="order3"))
    assert expired.outcome is Outcome.FAILED
    assert expired.error is not None and expired.error.kind is ErrorKind.TOKEN_INVALID
    assert expired.error.stable_code == "token_expired"
    assert len(await ledger(sbps_sim)) == 1
    assert_clean(calls, pair.token, pair.token_key, stale.token, stale.token_key)


async def test_missing_token_key_sends_nothing(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    pair = await make_token(sbps_sim)
    result = await gateway.charge_token(charge(pair, token_key=None))
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert result.error.fields == ("token_key",)
    assert calls[0].http_status is None and await ledger(sbps_sim) == []


async def test_maintenance_is_unavailable(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient
) -> None:
    pair = await make_token(sbps_sim)
    r = await sbps_sim.post("_sandbox/maintenance", json={"on": True, "code": "10128999"})
    r.raise_for_status()
    result = await gateway.charge_token(charge(pair))
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.error is not None and result.error.kind is ErrorKind.UNAVAILABLE
    assert await ledger(sbps_sim) == []


async def test_refused_connection_is_unavailable(calls: Calls) -> None:
    async with make_http_client(connect_timeout=1.0, read_timeout=1.0) as http:
        gateway = gateway_for(f"http://127.0.0.1:{free_port()}", calls, http)
        result = await gateway.charge_token(
            TokenCharge(job="AUTH", token="ab" * 10, token_key="cd" * 10, amount=1, order_id="o")
        )
    assert result.outcome is Outcome.UNAVAILABLE
    assert all(c.outcome is Outcome.UNAVAILABLE for c in calls)


async def test_timeout_after_charge_is_unknown_then_settled_by_lookup(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    (await sbps_sim.post("_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    (await sbps_sim.post("_sandbox/faults", json={"timeout_after_charge": 1.0})).raise_for_status()
    pair = await make_token(sbps_sim)
    lost = await gateway.charge_token(charge(pair, order_id="lost1"))
    assert lost.outcome is Outcome.UNKNOWN and lost.charge_id is None
    # Sent exactly once, and no commit after an answer that never came.
    assert calls.operations() == ["charge_token"]
    (await sbps_sim.post("_sandbox/faults", json={})).raise_for_status()
    [row] = await ledger(sbps_sim)
    assert row["approved"] is True and row["commit_status"] == "0"
    # The lookup by charge id finds it: never committed (and never will be: nothing is
    # re-sent), so no money moves: failed.
    [record] = await gateway.search_charges(charge_id=int(row["tracking_id"]))
    assert record.status is ChargeStatus.FAILED
    # A deliberate re-send of the same order: 96 is evidence the first one arrived.
    resend = await gateway.charge_token(charge(await make_token(sbps_sim), order_id="lost1"))
    assert resend.outcome is Outcome.UNKNOWN
    assert resend.error is not None and resend.error.stable_code == "duplicate_request"
    assert len(await ledger(sbps_sim)) == 1
    assert_clean(calls, pair.token, pair.token_key)


async def test_timeout_card_is_unknown(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    (await sbps_sim.post("_sandbox/config", json={"hang_seconds": 3})).raise_for_status()
    result = await gateway.charge_token(charge(await make_token(sbps_sim, card=CARD_TIMEOUT)))
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None and result.error.kind is ErrorKind.TIMEOUT
    assert len(calls) == 1


@pytest.mark.parametrize("fault", ["garbage_after_charge", "http_500"])
async def test_garbage_and_500_are_unknown(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls, fault: str
) -> None:
    (await sbps_sim.post("_sandbox/faults", json={fault: 1.0})).raise_for_status()
    pair = await make_token(sbps_sim)
    result = await gateway.charge_token(charge(pair))
    assert result.outcome is Outcome.UNKNOWN
    assert calls.operations() == ["charge_token"]
    if fault == "http_500":
        assert calls[0].http_status == 500
    assert_clean(calls, pair.token, pair.token_key)


async def test_capture_lower_amount_then_refund(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    auth = await gateway.charge_token(charge(await make_token(sbps_sim)))
    assert auth.charge_id is not None
    over = await gateway.capture(auth.charge_id, amount=5000)
    assert over.outcome is Outcome.FAILED and over.error is not None
    assert over.error.kind is ErrorKind.INVALID
    captured = await gateway.capture(auth.charge_id, amount=1200, ref="pay_c")
    assert captured.outcome is Outcome.SUCCESS, captured.error
    assert captured.charge_id == auth.charge_id
    assert calls.operations()[-2:] == ["lookup", "capture"]
    [row] = await ledger(sbps_sim)
    assert (row["payment_status"], row["sold_amount"]) == ("2", 1200)
    again = await gateway.capture(auth.charge_id)
    assert again.error is not None and again.error.kind is ErrorKind.STALE_VIEW
    refunded = await gateway.cancel(auth.charge_id)
    assert refunded.outcome is Outcome.SUCCESS, refunded.error
    assert calls.operations()[-2:] == ["lookup", "refund"]
    [row] = await ledger(sbps_sim)
    assert (row["payment_status"], row["balance"]) == ("3", 0)
    [record] = await gateway.search_charges(charge_id=auth.charge_id)
    assert record.status is ChargeStatus.CANCELED
    assert_clean(calls)


async def test_cancel_before_sales(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    auth = await gateway.charge_token(charge(await make_token(sbps_sim)))
    assert auth.charge_id is not None
    canceled = await gateway.cancel(auth.charge_id)
    assert canceled.outcome is Outcome.SUCCESS, canceled.error
    assert calls.operations()[-2:] == ["lookup", "cancel"]
    [row] = await ledger(sbps_sim)
    assert (row["payment_status"], row["balance"]) == ("4", 0)
    unknown = await gateway.cancel(99999999999999)
    assert unknown.outcome is Outcome.FAILED and calls.operations()[-1] == "lookup"


async def test_card_save_and_onetouch(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    user = await gateway.register_user("cust-1")
    assert user.outcome is Outcome.SUCCESS and user.customer_key == "cust-1"
    assert calls == []  # SBPS has no user API: nothing sent, nothing recorded
    pair = await make_token(sbps_sim)
    saved = await gateway.charge_token(charge(pair, customer_id="cust-1"))
    assert saved.outcome is Outcome.SUCCESS, saved.error
    assert (saved.customer_id, saved.customer_key, saved.card_seq) == ("cust-1", "cust-1", 1)
    card = await gateway.get_card("cust-1", "cust-1", 1)
    assert card.outcome is Outcome.SUCCESS and card.masked_number
    assert card.masked_number.endswith(CARD_OK[-4:]) and CARD_OK not in card.masked_number
    onetouch = await gateway.charge_onetouch(
        OnetouchCharge(
            job="CAPTURE",
            customer_id="cust-1",
            customer_key="cust-1",
            card_seq=1,
            amount=700,
            order_id="order-ot",
        )
    )
    assert onetouch.outcome is Outcome.SUCCESS, onetouch.error
    rows = await ledger(sbps_sim)
    assert [r["via"] for r in rows] == ["token", "stored"]
    assert rows[1]["payment_status"] == "2" and rows[1]["cust_code"] == "cust-1"
    # A second card through the card API, then deleted.
    other = await make_token(sbps_sim)
    registered = await gateway.register_card(
        "cust-1", "cust-1", other.token, token_key=other.token_key
    )
    assert registered.outcome is Outcome.SUCCESS, registered.error
    deleted = await gateway.delete_card("cust-1", "cust-1", 1)
    assert deleted.outcome is Outcome.SUCCESS
    gone = await gateway.get_card("cust-1", "cust-1", 1)
    assert gone.outcome is Outcome.FAILED
    assert gone.error is not None and gone.error.kind is ErrorKind.CARD_UNKNOWN
    assert (await gateway.delete_user("cust-1", "cust-1")).outcome is Outcome.SUCCESS
    none = await gateway.charge_onetouch(
        OnetouchCharge(
            job="AUTH",
            customer_id="cust-1",
            customer_key="cust-1",
            card_seq=1,
            amount=1,
            order_id="order-none",
        )
    )
    assert none.outcome is Outcome.FAILED and none.error is not None
    assert none.error.kind is ErrorKind.CARD_UNKNOWN
    assert_clean(calls, pair.token, pair.token_key, other.token, other.token_key)
    for call in calls:
        assert "res_payinfo_key" not in (call.response_body or "") or "***" in (
            call.response_body or ""
        )


async def test_no_search_but_the_lookup(gateway: SbpsGateway) -> None:
    from datetime import UTC, datetime

    with pytest.raises(SearchError) as info:
        await gateway.search_charges(created_from=datetime.now(UTC), created_to=datetime.now(UTC))
    assert info.value.error.kind is ErrorKind.INVALID
    assert await gateway.search_charges(charge_id=99999999999999) == []


async def test_charges_page_is_the_lookup(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient
) -> None:
    auth = await gateway.charge_token(charge(await make_token(sbps_sim)))
    assert auth.charge_id is not None
    page = await gateway.search_charges_page(ChargeQuery(charge_id=auth.charge_id))
    assert [r.charge_id for r in page.rows] == [auth.charge_id] and page.total == 1
    with pytest.raises(SearchError) as info:
        await gateway.search_charges_page(ChargeQuery(jobs=("AUTH",)))
    assert info.value.error.kind is ErrorKind.INVALID and info.value.error.fields == ("jobs",)


async def test_messages_in_both_languages(
    gateway: SbpsGateway, sbps_sim: httpx.AsyncClient
) -> None:
    r = await sbps_sim.post("_sandbox/maintenance", json={"on": True, "code": "10121999"})
    r.raise_for_status()
    result = await gateway.charge_token(charge(await make_token(sbps_sim)))
    assert result.error is not None
    assert "maintenance" in result.error.message_en and "メンテナンス" in result.error.message_ja
    assert result.error.retryable


async def test_wrong_hash_key_is_refused_not_unknown(
    sbps_simulator_url: str, sbps_sim: httpx.AsyncClient, calls: Calls
) -> None:
    async with make_http_client(connect_timeout=1.0, read_timeout=2.0) as http:
        wrong = SbpsGateway(
            http=http,
            base_url=sbps_simulator_url,
            merchant_id=sbps.MERCHANT_ID,
            service_id=sbps.SERVICE_ID,
            hash_key=HashKey("not-the-key"),
            recorder=calls,
        )
        result = await wrong.charge_token(charge(await make_token(sbps_sim)))
    # Basic auth carries the key: SBPS answers 401 before reading anything.
    assert result.outcome is Outcome.FAILED and calls[0].http_status == 401
    assert await ledger(sbps_sim) == []
    assert "not-the-key" not in repr(list(calls))


async def test_audit_rows_in_postgresql(
    sbps_simulator_url: str,
    sbps_sim: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The real recorder: every exchange a row, readable ids, nothing secret."""
    async with make_http_client(connect_timeout=1.0, read_timeout=2.0) as http:
        client = SbpsGateway(
            http=http,
            base_url=sbps_simulator_url,
            merchant_id=sbps.MERCHANT_ID,
            service_id=sbps.SERVICE_ID,
            hash_key=HashKey(sbps.HASH_KEY),
            recorder=DbCallRecorder(sessions),
        )
        pair = await make_token(sbps_sim)
        result = await client.charge_token(charge(pair, job="CAPTURE"), ref="pay_db")
        assert result.outcome is Outcome.SUCCESS and result.charge_id is not None
        assert (await client.cancel(result.charge_id, ref="pay_db")).outcome is Outcome.SUCCESS
    async with sessions() as session:
        rows = list(await session.scalars(select(GatewayCallLog).order_by(GatewayCallLog.id)))
    assert [r.operation for r in rows] == ["charge_token", "commit", "sales", "lookup", "refund"]
    assert all(r.ref == "pay_db" for r in rows)
    assert rows[1].request["tracking_id"] == str(result.charge_id)
    for row in rows:
        text = json.dumps(row.request, ensure_ascii=False) + (row.response_body or "")
        assert find_card_data(text) == []
        for secret in (sbps.HASH_KEY, pair.token, pair.token_key):
            assert secret not in text
