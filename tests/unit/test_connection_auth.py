"""接続認証 (connection authentication): the client adds ut + hak to every .aspx request when a
code is set, masked in the audit; the simulator refuses a missing or wrong hak and an ut
outside its tolerance with ER001 when it is configured with the code."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from app.gateway.base import GatewayCall, Outcome, TokenCharge
from app.gateway.masking import mask_params
from app.gateway.robotpayment import RobotPaymentClient
from app.gateway.robotpayment.client import connection_auth
from app.sandbox import SandboxConfig, create_sandbox_app
from app.sandbox.testing import make_token, pay_by_token

CODE = "conn-auth-code-0123"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_hak_is_sha256_hex_of_ut_then_code() -> None:
    assert connection_auth(CODE, 1_700_000_000.9) == {
        "ut": "1700000000",
        "hak": sha256_hex("1700000000" + CODE),
    }


def test_hak_is_masked_for_the_audit() -> None:
    masked = mask_params({"aid": "100001", "ut": "1700000000", "hak": "ab" * 32})
    assert masked == {"aid": "100001", "ut": "1700000000", "hak": "***"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig(connection_auth_code=CODE))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as client:
        yield client


def signed(ut: int | None = None, code: str = CODE) -> dict[str, str]:
    value = str(int(time.time()) if ut is None else ut)
    return {"ut": value, "hak": sha256_hex(value + code)}


async def test_the_simulator_takes_a_right_hak(http: httpx.AsyncClient) -> None:
    line = (await pay_by_token(http, extra=signed())).text
    fields = line.split(",")
    assert fields[1] == "1", line
    # ut/hak are gateway fields: never echoed back as free data.
    assert "hak=" not in line and "ut=" not in line


# Made when the test runs, not when it is collected: a whole tier may run in between, and
# "400 s ahead" must still be outside the simulator's tolerance then.
_REFUSED: dict[str, Callable[[], dict[str, str]]] = {
    "none": dict,
    "no-hak": lambda: {"ut": str(int(time.time()))},
    "wrong-code": lambda: signed(code="wrong-code"),
    "uppercase": lambda: {**signed(), "hak": signed()["hak"].upper()},
    "old-ut": lambda: signed(ut=int(time.time()) - 400),
    "future-ut": lambda: signed(ut=int(time.time()) + 400),
    "ut-not-digits": lambda: {"ut": "abc", "hak": sha256_hex("abc" + CODE)},
}


@pytest.mark.parametrize("case", list(_REFUSED))
async def test_the_simulator_refuses_with_er001(http: httpx.AsyncClient, case: str) -> None:
    line = (await pay_by_token(http, extra=_REFUSED[case]())).text
    assert line.split(",")[:4] == ["0", "2", "", "ER001"], line
    assert (await http.get("_sandbox/ledger")).json() == []


async def test_every_gateway_endpoint_checks_it(http: httpx.AsyncClient) -> None:
    for path, form in (
        ("gateway/carduser.aspx", {"aid": "100001", "cmd": "3", "uid": "nobody"}),
        ("gateway/gateway.aspx", {"aid": "100001", "jb": "SALES", "rt": "1", "tid": "1"}),
        ("gateway/re_auth.aspx", {"aid": "100001", "rt": "1", "tid": "1", "am": "1"}),
    ):
        text = (await http.post(path, data=form)).text
        assert "ER001" in text, (path, text)


async def test_the_code_is_not_shown_by_the_control_api(http: httpx.AsyncClient) -> None:
    assert (await http.get("_sandbox/config")).json()["connection_auth_code"] == "***"


async def test_our_client_signs_every_request_and_keeps_no_hak(
    http: httpx.AsyncClient,
) -> None:
    calls: list[GatewayCall] = []

    async def record(call: GatewayCall) -> None:
        calls.append(call)

    app_transport = http._transport  # the simulator, in process
    client = RobotPaymentClient(
        http=httpx.AsyncClient(transport=app_transport),
        base_url="http://sim",
        aid="100001",
        search_base_url="http://sim/api",
        search_api_key="sandbox-search-key",
        recorder=record,
        connection_auth_code=CODE,
    )
    token = await make_token(http, three_ds={"am": "1000", "tx": "0", "sf": "0", "em": "a@b.jp"})
    result = await client.charge_token(
        TokenCharge(token=token, amount=1000, tax=0, shipping=0, job="AUTH", email="a@b.jp")
    )
    assert result.outcome is Outcome.SUCCESS, result
    user = await client.get_user("nobody")
    assert user.error is not None and user.error.code != "ER001"  # signed: past the check
    assert all(c.request["hak"] == "***" and c.request["ut"].isdigit() for c in calls)
    assert all(CODE not in repr(c) for c in calls)
