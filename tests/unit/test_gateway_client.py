"""RobotPaymentClient against httpx.MockTransport: requests sent, outcomes, retries, audit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from app.gateway.base import (
    GatewayCall,
    OnetouchCharge,
    Outcome,
    PaymentGateway,
    Reauthorization,
    TokenCharge,
)
from app.gateway.robotpayment import RobotPaymentClient, make_http_client

BASE = "https://gw.test/"
TOKEN = "U0K1ZZY2RsZEN6Wm1pTnBRejdvVHhJaQ==" * 2
SUCCESS = "1095729,1,TestMod,,205685,ord1,1000,80,0,1080,,,"

Handler = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[GatewayCall] = []

    async def __call__(self, call: GatewayCall) -> None:
        self.calls.append(call)


class Requests:
    """A MockTransport handler that logs requests and answers from a script."""

    def __init__(self, *answers: httpx.Response | Exception | str) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, str):
            return httpx.Response(200, text=answer)
        return answer

    def form(self, index: int = -1) -> dict[str, str]:
        return dict(parse_qsl(self.seen[index].content.decode("ascii"), keep_blank_values=True))


def make_client(
    handler: Handler, *, result_mode: int = 1, deadline: float = 5.0
) -> tuple[RobotPaymentClient, Recorder]:
    recorder = Recorder()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = RobotPaymentClient(
        http=http,
        base_url=BASE,
        aid="123456",
        result_mode=result_mode,
        search_base_url="https://api.test",
        search_api_key="k" * 32,
        recorder=recorder,
        deadline_seconds=deadline,
        retry_delays=(0, 0),
    )
    return client, recorder


def token_charge(**overrides: object) -> TokenCharge:
    fields: dict[str, object] = {
        "job": "AUTH",
        "token": TOKEN,
        "amount": 1000,
        "tax": 80,
        "shipping": 0,
        "order_id": "ord1",
        "email": "taro@example.com",
    }
    fields.update(overrides)
    return TokenCharge(**fields)  # type: ignore[arg-type]


def test_client_satisfies_the_protocol() -> None:
    client, _ = make_client(Requests(SUCCESS))
    gateway: PaymentGateway = client
    assert gateway is client


# --- token charge ------------------------------------------------------------------------


async def test_token_charge_success() -> None:
    handler = Requests(SUCCESS)
    client, recorder = make_client(handler)
    result = await client.charge_token(token_charge(extra={"memo": "注文"}), ref="pay_1")
    request = handler.seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://gw.test/gateway/gateway_token.aspx"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert list(handler.form()) == [
        "aid", "jb", "rt", "cod", "tkn", "am", "tx", "sf", "em", "memo",
    ]  # fmt: skip
    assert handler.form() == {
        "aid": "123456", "jb": "AUTH", "rt": "1", "cod": "ord1", "tkn": TOKEN,
        "am": "1000", "tx": "80", "sf": "0", "em": "taro@example.com", "memo": "注文",
    }  # fmt: skip
    assert result.outcome is Outcome.SUCCESS
    assert (result.charge_id, result.gateway_order_code, result.approval_code) == (
        1095729,
        "205685",
        "TestMod",
    )
    assert result.order_ref == "ord1"
    assert (result.amount, result.tax, result.shipping, result.total) == (1000, 80, 0, 1080)
    assert result.error is None
    assert result.customer_id is None and result.customer_key is None and result.card_seq is None
    assert recorder.calls == [result.call]
    call = result.call
    assert (call.operation, call.ref, call.http_status, call.outcome) == (
        "charge_token",
        "pay_1",
        200,
        Outcome.SUCCESS,
    )
    assert call.endpoint.endswith("gateway/gateway_token.aspx")
    assert call.response_body == SUCCESS
    assert call.latency_ms >= 0 and call.started_at.tzinfo is not None


async def test_token_charge_registering_user_and_card() -> None:
    handler = Requests("77,1,AP,,78,,500,0,0,500,,,shopper01,vnjpBycDO5,1")
    client, _ = make_client(handler)
    result = await client.charge_token(token_charge(customer_id="shopper01", amount=500, tax=None))
    assert handler.form()["uid"] == "shopper01"
    assert handler.form()["tx"] == "0"
    assert (result.customer_id, result.customer_key, result.card_seq) == (
        "shopper01",
        "vnjpBycDO5",
        1,
    )


async def test_token_charge_with_registered_product_sends_iid_only() -> None:
    handler = Requests(SUCCESS)
    client, _ = make_client(handler)
    await client.charge_token(token_charge(item_code="item9", amount=None, tax=None))
    form = handler.form()
    assert form["iid"] == "item9"
    assert not {"am", "tx", "sf", "jb"} & set(form)


async def test_free_parameters_cannot_shadow_gateway_fields() -> None:
    handler = Requests(SUCCESS)
    client, _ = make_client(handler)
    extra = {"cn": "4444333322221111", "am": "1", "aid": "999999", "note": "ok"}
    await client.charge_token(token_charge(extra=extra))
    form = handler.form()
    assert "cn" not in form
    assert (form["am"], form["aid"], form["note"]) == ("1000", "123456", "ok")


@pytest.mark.parametrize(
    ("body", "outcome", "stable"),
    [
        ("0,2,,G55,,ord1,1000,80,0,1080,,,", Outcome.DECLINED, "insufficient_limit"),
        ("0,2,,G12,,,0,0,0,0,,,", Outcome.DECLINED, "card_declined"),
        ("0,2,,ER900,,,0,0,0,0,,,", Outcome.DECLINED, "three_ds_failed"),
        ("0,2,,ER584,,,0,0,0,0,,,", Outcome.FAILED, "token_invalid"),
        ("0,2,,ER999,,,0,0,0,0,,,", Outcome.UNAVAILABLE, "maintenance"),
        ("0,2,,,,,0,0,0,0,,,", Outcome.FAILED, "gateway_error"),
        ("ER003", Outcome.FAILED, "source_ip_rejected"),
        ("ER:ER999", Outcome.UNAVAILABLE, "maintenance"),
    ],
)
async def test_refusals(body: str, outcome: Outcome, stable: str) -> None:
    client, recorder = make_client(Requests(body))
    result = await client.charge_token(token_charge())
    assert result.outcome is outcome
    assert result.error is not None and result.error.stable_code == stable
    assert result.charge_id is None  # gid 0 means no payment was created
    assert len(recorder.calls) == 1
    assert recorder.calls[0].error_code == result.error.code


# --- transport failures ------------------------------------------------------------------


async def test_connect_error_is_retried_then_unavailable() -> None:
    handler = Requests(httpx.ConnectError("refused"))
    client, recorder = make_client(handler)
    result = await client.charge_token(token_charge())
    assert len(handler.seen) == 3
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.error is not None and result.error.code == "connect_error"
    assert result.error.retryable
    assert [c.outcome for c in recorder.calls] == [Outcome.UNAVAILABLE] * 3
    assert all(c.http_status is None and c.response_body is None for c in recorder.calls)


async def test_connect_error_then_success() -> None:
    handler = Requests(httpx.ConnectTimeout("slow connect"), SUCCESS)
    client, recorder = make_client(handler)
    result = await client.charge_token(token_charge())
    assert result.outcome is Outcome.SUCCESS
    assert [c.outcome for c in recorder.calls] == [Outcome.UNAVAILABLE, Outcome.SUCCESS]


async def test_proxy_refusal_counts_as_never_sent() -> None:
    handler = Requests(httpx.ProxyError("CONNECT refused"))
    client, _ = make_client(handler)
    result = await client.charge_token(token_charge())
    assert result.outcome is Outcome.UNAVAILABLE
    assert len(handler.seen) == 3


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (httpx.ReadTimeout("read"), "timeout"),
        (httpx.WriteTimeout("write"), "timeout"),
        (httpx.RemoteProtocolError("peer closed"), "http_error"),
        (httpx.ReadError("reset"), "http_error"),
        (RuntimeError("in-process app crashed"), "http_error"),
    ],
)
async def test_failure_after_sending_is_unknown_and_never_retried(
    failure: Exception, code: str
) -> None:
    handler = Requests(failure)
    client, recorder = make_client(handler)
    result = await client.charge_token(token_charge())
    assert len(handler.seen) == 1
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None and result.error.code == code
    assert not result.error.retryable
    assert len(recorder.calls) == 1


async def test_deadline_bounds_transports_that_ignore_timeouts() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, text=SUCCESS)

    client, _ = make_client(slow, deadline=0.05)
    result = await client.capture(1095729)
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None and result.error.code == "timeout"
    assert result.call.latency_ms < 2000


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_error_is_unknown_for_charges(status: int) -> None:
    handler = Requests(httpx.Response(status, text="Service Unavailable"))
    client, _ = make_client(handler)
    result = await client.charge_token(token_charge())
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None and result.error.code == "http_error"
    assert result.call.http_status == status
    assert len(handler.seen) == 1


async def test_client_error_status_is_failed() -> None:
    handler = Requests(httpx.Response(404, text="Not Found"))
    client, _ = make_client(handler)
    result = await client.charge_token(token_charge())
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.code == "http_error"


@pytest.mark.parametrize(
    "body", ["<html><body>Runtime Error</body></html>", "", "OK", b"\xff\xfe\x00garbage"]
)
async def test_unreadable_answer_is_unknown_for_charges(body: str | bytes) -> None:
    handler = Requests(httpx.Response(200, content=body))
    client, _ = make_client(handler)
    result = await client.charge_onetouch(
        OnetouchCharge(
            job="CAPTURE", customer_id="u1", customer_key="KEY0000001", card_seq=1, amount=100
        )
    )
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None and result.error.code == "bad_response"
    assert len(handler.seen) == 1


# --- result mode 0 (kickback) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "outcome", "code"),
    [
        ("OK", Outcome.PENDING, None),
        ("OK\r\n", Outcome.PENDING, None),
        ("ER:ER003", Outcome.FAILED, "ER003"),
        ("ER584", Outcome.FAILED, "ER584"),
        (SUCCESS, Outcome.SUCCESS, None),
        ("NG", Outcome.UNKNOWN, "bad_response"),
    ],
)
async def test_result_mode_zero(body: str, outcome: Outcome, code: str | None) -> None:
    handler = Requests(body)
    client, _ = make_client(handler, result_mode=0)
    result = await client.charge_token(token_charge())
    assert handler.form()["rt"] == "0"
    assert result.outcome is outcome
    assert (result.error.code if result.error else None) == code


async def test_capture_and_cancel_always_ask_for_the_answer() -> None:
    handler = Requests(SUCCESS)
    client, _ = make_client(handler, result_mode=0)
    captured = await client.capture(1095729, ref="pay_1")
    canceled = await client.cancel(1095729)
    assert str(handler.seen[0].url) == "https://gw.test/gateway/gateway.aspx"
    assert handler.form(0) == {"aid": "123456", "jb": "SALES", "rt": "1", "tid": "1095729"}
    assert handler.form(1) == {"aid": "123456", "jb": "CANCEL", "rt": "1", "tid": "1095729"}
    assert captured.outcome is canceled.outcome is Outcome.SUCCESS
    assert (captured.call.operation, canceled.call.operation) == ("capture", "cancel")


async def test_repeated_capture_reports_already_captured() -> None:
    client, _ = make_client(Requests("1095729,2,,ER032,,,1000,0,0,1000,,,"))
    result = await client.capture(1095729)
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.stable_code == "already_captured"
    assert result.error.http_status == 409


# --- one-touch and re-authorization ------------------------------------------------------


async def test_onetouch_charge_form() -> None:
    handler = Requests(SUCCESS)
    client, recorder = make_client(handler)
    charge = OnetouchCharge(
        job="CAPTURE", customer_id="u1", customer_key="vnjpBycDO5", card_seq=2, amount=1000,
        tax=80, shipping=0,
        order_id="ord1", phone="0312345678", method="61", installments=3,
    )  # fmt: skip
    result = await client.charge_onetouch(charge, ref="pay_2")
    assert str(handler.seen[0].url) == "https://gw.test/gateway/onetouch.aspx"
    assert handler.form() == {
        "aid": "123456", "rt": "1", "cmd": "4", "cod": "ord1", "uid": "u1",
        "key": "vnjpBycDO5", "num": "2", "jb": "CAPTURE", "am": "1000", "tx": "80", "sf": "0",
        "pn": "0312345678", "md": "61", "pt": "3",
    }  # fmt: skip
    assert result.outcome is Outcome.SUCCESS
    assert recorder.calls[0].request["key"] == "vn***"


async def test_reauthorization_form() -> None:
    handler = Requests("2000001,1,AP2,,2000002,,1200,96,0,1296,,,")
    client, _ = make_client(handler)
    result = await client.reauthorize(
        Reauthorization(charge_id=1095729, amount=1200, tax=96, email="taro@example.com")
    )
    assert str(handler.seen[0].url) == "https://gw.test/gateway/re_auth.aspx"
    assert handler.form() == {
        "aid": "123456", "rt": "1", "tid": "1095729", "am": "1200", "tx": "96", "sf": "0",
        "em": "taro@example.com",
    }  # fmt: skip
    assert (result.outcome, result.charge_id, result.total) == (Outcome.SUCCESS, 2000001, 1296)


# --- users and cards ---------------------------------------------------------------------


async def test_register_user() -> None:
    handler = Requests("1,,shopper01,vnjpBycDO5")
    client, _ = make_client(handler)
    result = await client.register_user("shopper01", "taro@example.com", None, ref="cus_1")
    assert str(handler.seen[0].url) == "https://gw.test/gateway/carduser.aspx"
    assert handler.form() == {
        "aid": "123456", "rt": "1", "cmd": "0", "uid": "shopper01", "em": "taro@example.com",
    }  # fmt: skip
    assert (result.outcome, result.customer_id, result.customer_key) == (
        Outcome.SUCCESS,
        "shopper01",
        "vnjpBycDO5",
    )


async def test_register_duplicate_user() -> None:
    client, _ = make_client(Requests("2,ER652,shopper01,"))
    result = await client.register_user("shopper01")
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.stable_code == "duplicate_customer"


async def test_user_changes_are_not_retried_after_a_timeout() -> None:
    handler = Requests(httpx.ReadTimeout("read"))
    client, _ = make_client(handler)
    result = await client.delete_user("shopper01", "vnjpBycDO5")
    assert result.outcome is Outcome.UNKNOWN
    assert len(handler.seen) == 1
    assert handler.form()["cmd"] == "2"


async def test_update_and_get_user() -> None:
    handler = Requests("1,,u1,KEY0000001", "1,,u1,KEY0000001,new@example.com,0312345678")
    client, _ = make_client(handler)
    updated = await client.update_user("u1", "KEY0000001", "new@example.com", "0312345678")
    fetched = await client.get_user("u1")
    assert handler.form(0)["cmd"] == "1" and handler.form(0)["em"] == "new@example.com"
    assert handler.form(1) == {"aid": "123456", "rt": "1", "cmd": "3", "uid": "u1"}
    assert updated.outcome is Outcome.SUCCESS
    assert (fetched.email, fetched.phone, fetched.customer_key) == (
        "new@example.com",
        "0312345678",
        "KEY0000001",
    )


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        (httpx.Response(503, text="busy"), Outcome.UNAVAILABLE, "http_error"),
        (httpx.ReadTimeout("read"), Outcome.UNAVAILABLE, "timeout"),
        (httpx.ConnectError("refused"), Outcome.UNAVAILABLE, "connect_error"),
        ("<html>oops</html>", Outcome.FAILED, "bad_response"),
    ],
)
async def test_lookups_are_retried_twice(
    answer: httpx.Response | Exception | str, outcome: Outcome, code: str
) -> None:
    handler = Requests(answer)
    client, recorder = make_client(handler)
    result = await client.get_user("u1")
    assert len(handler.seen) == 3 and len(recorder.calls) == 3
    assert result.outcome is outcome
    assert result.error is not None and result.error.code == code


async def test_lookup_recovers_on_retry() -> None:
    card_line = "1,,u1,KEY0000001,2,************1111,2912,TARO,YAMADA"
    handler = Requests(httpx.ReadTimeout("read"), card_line)
    client, _ = make_client(handler)
    card = await client.get_card("u1", "KEY0000001", 2)
    assert handler.form()["cmd"] == "6"
    assert card.outcome is Outcome.SUCCESS
    assert (card.card_seq, card.masked_number, card.expiry, card.first_name, card.last_name) == (
        2,
        "************1111",
        "2912",
        "TARO",
        "YAMADA",
    )


async def test_register_and_update_card() -> None:
    handler = Requests("1,,u1,KEY0000001,3")
    client, recorder = make_client(handler)
    registered = await client.register_card("u1", "KEY0000001", TOKEN)
    updated = await client.register_card("u1", "KEY0000001", TOKEN, card_seq=3)
    assert str(handler.seen[0].url) == "https://gw.test/gateway/carduser_token.aspx"
    assert handler.form(0) == {
        "aid": "123456", "rt": "1", "cmd": "4", "uid": "u1", "key": "KEY0000001", "tkn": TOKEN,
    }  # fmt: skip
    assert handler.form(1)["num"] == "3"
    assert (registered.outcome, registered.card_seq) == (Outcome.SUCCESS, 3)
    assert (registered.call.operation, updated.call.operation) == ("register_card", "update_card")
    assert all(TOKEN not in repr(call) for call in recorder.calls)


async def test_delete_card() -> None:
    handler = Requests("2,ER149,u1,KEY0000001,9")
    client, _ = make_client(handler)
    result = await client.delete_card("u1", "KEY0000001", 9)
    assert handler.form()["cmd"] == "5"
    assert result.outcome is Outcome.FAILED
    assert result.error is not None and result.error.stable_code == "card_not_found"


# --- audit ---------------------------------------------------------------------------------


async def test_recorder_sees_only_masked_data() -> None:
    pan = "4444333322221111"
    handler = Requests(f"1,1,AP,,2,,100,0,0,100,,,memo={pan}")
    client, recorder = make_client(handler)
    await client.charge_token(token_charge(customer_id="u1", extra={"memo": pan}))
    (call,) = recorder.calls
    assert call.request["tkn"].startswith("tkn(len=")
    assert pan not in repr(call) and TOKEN not in repr(call)
    assert call.response_body is not None and "************1111" in call.response_body


async def test_user_keys_are_masked_in_recorded_answers() -> None:
    handler = Requests("77,1,AP,,78,,500,0,0,500,,,shopper01,vnjpBycDO5,1", "1,,u1,vnjpBycDO5")
    client, recorder = make_client(handler)
    charge = await client.charge_token(token_charge(customer_id="shopper01"))
    user = await client.get_user("u1")
    assert charge.customer_key == user.customer_key == "vnjpBycDO5"  # callers get the real key...
    bodies = [c.response_body or "" for c in recorder.calls]
    assert bodies == ["77,1,AP,,78,,500,0,0,500,,,shopper01,vn***,1", "1,,u1,vn***"]


async def test_a_bug_while_reading_the_answer_is_unknown_not_an_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.gateway.robotpayment import interpret

    def broken(body: str | bytes) -> None:
        raise KeyError("bug")

    monkeypatch.setattr(interpret, "parse_payment_response", broken)
    client, _ = make_client(Requests(SUCCESS))
    result = await client.charge_token(token_charge())
    assert result.outcome is Outcome.UNKNOWN
    assert result.error is not None and result.error.code == "bad_response"


async def test_recorder_failure_does_not_change_the_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(call: GatewayCall) -> None:
        raise RuntimeError("database down")

    client = RobotPaymentClient(
        http=httpx.AsyncClient(transport=httpx.MockTransport(Requests(SUCCESS))),
        base_url=BASE,
        aid="123456",
        search_base_url="https://api.test",
        search_api_key="k",
        recorder=broken,
    )
    result = await client.charge_token(token_charge())
    assert result.outcome is Outcome.SUCCESS
    assert "recorder failed" in caplog.text


async def test_works_without_a_recorder() -> None:
    client = RobotPaymentClient(
        http=httpx.AsyncClient(transport=httpx.MockTransport(Requests(SUCCESS))),
        base_url="https://gw.test",
        aid="123456",
        search_base_url="https://api.test",
        search_api_key="k",
    )
    result = await client.charge_token(token_charge())
    assert result.call.endpoint == "https://gw.test/gateway/gateway_token.aspx"


def test_result_mode_is_validated() -> None:
    with pytest.raises(ValueError, match="result_mode"):
        make_client(Requests(SUCCESS), result_mode=2)


# --- the shared http client --------------------------------------------------------------


async def test_make_http_client() -> None:
    handler = Requests(SUCCESS)
    http = make_http_client(
        connect_timeout=2, read_timeout=9, transport=httpx.MockTransport(handler)
    )
    assert http.timeout == httpx.Timeout(connect=2, read=9, write=9, pool=2)
    assert http.headers["user-agent"].startswith("rp-merchant/")
    assert not http.follow_redirects
    await http.post("https://gw.test/x")
    await http.aclose()


async def test_an_explicit_transport_wins_over_the_proxy() -> None:
    handler = Requests(SUCCESS)
    http = make_http_client(
        connect_timeout=1,
        read_timeout=1,
        proxy="http://127.0.0.1:9",
        transport=httpx.MockTransport(handler),
    )
    response = await http.post("https://gw.test/x")
    assert response.text == SUCCESS and len(handler.seen) == 1
    await http.aclose()


async def test_proxy_is_used_when_set() -> None:
    http = make_http_client(connect_timeout=1, read_timeout=1, proxy="http://proxy.test:3128")
    transport = http._transport_for_url(httpx.URL("https://credit.j-payment.co.jp/"))
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert transport is not http._transport  # the proxy mount, not the direct transport
    await http.aclose()
