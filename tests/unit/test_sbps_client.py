"""The SBPS client's outcome mapping and its masking rule, without a simulator: answers
written by hand, transports that fail on purpose."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from app.gateway.base import (
    ChargeStatus,
    ErrorKind,
    GatewayCall,
    Outcome,
    PaymentGateway,
    SearchError,
    TokenCharge,
)
from app.gateway.sbps import HashKey, parse_response
from app.gateway.sbps.client import SbpsGateway
from app.gateway.sbps.codec import SbpsCodecError
from app.gateway.sbps.elements import Block, Leaf
from app.gateway.sbps.interpret import charge_record, interpreter
from app.gateway.sbps.masking import mask_document, mask_elements
from app.gateway.transport import UnexpectedStatus
from tests.support.carddata import find_card_data

AUTHORIZE = "ST01-00131-101"
TRACKING = "12345678901234"
TXN = "B30132002ST010013110100361052570"
CARD = "4444333322221111"
HEAD = '<?xml version="1.0" encoding="Shift_JIS"?>'


def ok(body: str, request_id: str = AUTHORIZE) -> str:
    return (
        f'{HEAD}<sps-api-response id="{request_id}"><res_result>OK</res_result>{body}'
        "<res_err_code/><res_date>20261204190000</res_date></sps-api-response>"
    )


def ng(code: str) -> str:
    return (
        f"{HEAD}<sps-api-response><res_result>NG</res_result><res_err_code>{code}</res_err_code>"
        "<res_date>20261204190000</res_date></sps-api-response>"
    )


IDS = (
    f"<res_sps_transaction_id>{TXN}</res_sps_transaction_id>"
    f"<res_tracking_id>{TRACKING}</res_tracking_id>"
)


# --- masking -----------------------------------------------------------------------------


def test_ids_and_dates_stay_readable() -> None:
    text = ok(IDS + "<res_process_date>20261204190000</res_process_date>")
    assert mask_document(text) == text


def test_card_numbers_and_secrets_are_masked() -> None:
    text = ok(
        IDS
        + "<res_pay_method_info><cc_number>"
        + CARD
        + "</cc_number><res_payinfo_key>SECRETKEY99</res_payinfo_key></res_pay_method_info>"
        + f"<res_note>card {CARD}</res_note>"
    )
    masked = mask_document(text)
    assert CARD not in masked and "SECRETKEY99" not in masked
    assert "************1111" in masked and TRACKING in masked and TXN in masked
    assert find_card_data(masked) == []


def test_a_card_number_in_an_id_element_is_masked_unless_it_has_the_ids_shape() -> None:
    # 16 digits is no tracking id, and a 14-digit run that is no date is no timestamp.
    masked = mask_document(
        f"<res_tracking_id>{CARD}</res_tracking_id><res_date>36123456789012</res_date>"
    )
    assert CARD not in masked and "36123456789012" not in masked


def test_garbage_is_scrubbed_by_the_shared_rule() -> None:
    masked = mask_document(f"<html>java.lang.Error at {CARD} <b>x</b>")
    assert CARD not in masked and "1111" in masked


def test_request_elements_mask_tokens_and_keep_ids() -> None:
    masked = mask_elements(
        (
            Leaf("tracking_id", TRACKING),
            Block("pay_option_manage", (Leaf("token", "ab" * 116), Leaf("token_key", "3059"))),
            Leaf("request_date", "20261204190000"),
        )
    )
    assert masked["tracking_id"] == TRACKING and masked["request_date"] == "20261204190000"
    assert masked["pay_option_manage/token"].startswith("tkn(len=232")
    assert "3059" not in masked["pay_option_manage/token_key"]


# --- outcomes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome", "kind"),
    [
        ("10128999", Outcome.UNAVAILABLE, ErrorKind.UNAVAILABLE),
        ("10126G12", Outcome.DECLINED, ErrorKind.DECLINED),
        ("10196999", Outcome.UNKNOWN, ErrorKind.CONFLICT),
        ("10186999", Outcome.UNKNOWN, ErrorKind.UNKNOWN),
        ("101T2022", Outcome.FAILED, ErrorKind.TOKEN_INVALID),
        ("10141999", Outcome.FAILED, ErrorKind.STALE_VIEW),
    ],
)
def test_ng_answers(code: str, outcome: Outcome, kind: ErrorKind) -> None:
    verdict = interpreter(AUTHORIZE)(200, ng(code))
    assert verdict.outcome is outcome
    assert verdict.error is not None and verdict.error.kind is kind and verdict.error.code == code


def test_ok_needs_the_ids_it_must_carry() -> None:
    assert interpreter(AUTHORIZE, ("tracking_id",))(200, ok(IDS)).outcome is Outcome.SUCCESS
    with pytest.raises(SbpsCodecError):
        interpreter(AUTHORIZE, ("tracking_id",))(200, ok(""))


@pytest.mark.parametrize(
    "body",
    [
        f"{HEAD}<sps-api-response><res_result>NG</res_result></sps-api-response>",
        "<html>Internal error",
        ok(IDS, request_id="ST02-00101-101"),  # the answer to another request
    ],
)
def test_unreadable_answers(body: str) -> None:
    with pytest.raises(SbpsCodecError):
        interpreter(AUTHORIZE)(200, body)


def test_a_5xx_is_not_read() -> None:
    with pytest.raises(UnexpectedStatus):
        interpreter(AUTHORIZE)(500, ok(IDS))


@pytest.mark.parametrize(
    ("status", "commit", "payment", "expected"),
    [
        ("0", "1", "1", ChargeStatus.AUTHORIZED),
        ("0", "0", "1", ChargeStatus.FAILED),  # never committed: SBPS keeps it not
        ("0", "1", "2", ChargeStatus.CAPTURED),
        ("0", "1", "3", ChargeStatus.CANCELED),
        ("0", "1", "4", ChargeStatus.CANCELED),
        ("1", "0", "0", ChargeStatus.FAILED),
    ],
)
def test_lookup_status(status: str, commit: str, payment: str, expected: ChargeStatus) -> None:
    body = (
        f"<res_status>{status}</res_status>{IDS}<res_pay_method_info>"
        "<res_pay_method_info_detail><cc_number>************1111</cc_number>"
        f"</res_pay_method_info_detail><cardbrand_code>J</cardbrand_code>"
        f"<commit_status>{commit}</commit_status><payment_status>{payment}</payment_status>"
        "</res_pay_method_info>"
    )
    record = charge_record(parse_response(ok(body, "MG01-00101-101").encode("cp932")))
    assert record is not None and record.status is expected
    assert record.charge_id == int(TRACKING) and record.brand == "jcb"
    assert record.card_last4 == "1111"


# --- the client on failing transports -----------------------------------------------------


class Calls(list[GatewayCall]):
    async def __call__(self, call: GatewayCall) -> None:
        self.append(call)


def gateway(handler: Callable[[httpx.Request], httpx.Response], calls: Calls) -> SbpsGateway:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return SbpsGateway(
        http=http,
        base_url="https://sbps.test",
        merchant_id="30132",
        service_id="002",
        hash_key=HashKey("k" * 40),
        recorder=calls,
        retry_delays=(0.0, 0.0),
    )


CHARGE = TokenCharge(job="AUTH", token="ab" * 116, token_key="3059" * 10, amount=10, order_id="o1")


def failing(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


async def test_read_timeout_is_unknown_and_sent_once() -> None:
    calls = Calls()
    result = await gateway(failing(httpx.ReadTimeout("slow")), calls).charge_token(CHARGE)
    assert result.outcome is Outcome.UNKNOWN and len(calls) == 1


async def test_refused_connection_is_unavailable_and_retried() -> None:
    calls = Calls()
    result = await gateway(failing(httpx.ConnectError("refused")), calls).charge_token(CHARGE)
    assert result.outcome is Outcome.UNAVAILABLE and len(calls) == 3


async def test_commit_lost_is_unknown_with_the_charge_id() -> None:
    calls = Calls()

    def handler(request: httpx.Request) -> httpx.Response:
        if b'id="ST01-00131-101"' in request.content:
            return httpx.Response(200, content=ok(IDS).encode("cp932"))
        raise httpx.ReadTimeout("lost")

    result = await gateway(handler, calls).charge_token(CHARGE)
    assert result.outcome is Outcome.UNKNOWN and result.charge_id == int(TRACKING)
    assert [c.operation for c in calls] == ["charge_token", "commit"]


async def test_the_hash_key_and_authorization_never_recorded() -> None:
    calls = Calls()
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=ng("10126G12").encode("cp932"))

    await gateway(handler, calls).charge_token(CHARGE)
    assert seen[0].headers["authorization"].startswith("Basic ")
    [call] = calls
    recorded = repr(call)
    assert "k" * 40 not in recorded and seen[0].headers["authorization"] not in recorded
    assert call.request["authorization"] == "Basic 30132002:***"
    assert CHARGE.token not in recorded and "3059" * 10 not in recorded


async def test_search_is_one_charge_by_id_only() -> None:
    calls = Calls()
    client = gateway(failing(httpx.ConnectError("refused")), calls)
    with pytest.raises(SearchError) as info:
        await client.search_charges(charge_id=None)
    assert info.value.error.kind is ErrorKind.INVALID and calls == []
    with pytest.raises(SearchError):  # unreachable: a failed search, not "no charge"
        await client.search_charges(charge_id=int(TRACKING))
    limits = client.charge_search_limits
    assert limits.max_results == 2 and limits.max_range.total_seconds() == 0


async def test_reauthorize_is_refused_without_a_call() -> None:
    from app.gateway.base import Reauthorization

    calls = Calls()
    client = gateway(failing(AssertionError("no call expected")), calls)
    result = await client.reauthorize(Reauthorization(charge_id=int(TRACKING), amount=10))
    assert result.outcome is Outcome.FAILED and result.error is not None
    assert calls[0].http_status is None


def test_is_a_payment_gateway() -> None:
    typed: PaymentGateway = gateway(failing(AssertionError()), Calls())
    assert isinstance(typed, SbpsGateway)
