"""The SBPS simulator in-process against input no client should send: whatever the body, an
authenticated request is answered HTTP 200 Shift_JIS XML (NG without an id), never a 500 or a
traceback; and two concurrent authorizations of one order_id charge once."""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.sandbox.sbps import SbpsConfig, create_sbps_app
from app.sandbox.sbps.testing import make_token
from app.sandbox.sbps.wire import parse
from tests.support.sbps import HASH_KEY, MERCHANT_ID, SERVICE_ID, build

IDS = ["ST01-00131-101", "ST02-00101-101", "MG01-00101-101", "TA02-00101-101", "XX00-00000-000"]
AUTH = (MERCHANT_ID + SERVICE_ID, HASH_KEY)


def _config() -> SbpsConfig:
    return SbpsConfig(merchant_id=MERCHANT_ID, service_id=SERVICE_ID, hash_key=HASH_KEY)


@dataclass
class Client:
    """Sync calls into the in-process app on a loop of its own (hypothesis runs sync tests)."""

    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient

    def post(self, body: bytes) -> httpx.Response:
        return self.loop.run_until_complete(
            self.http.post("api/xmlapi.do", content=body, auth=AUTH)
        )


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    loop = asyncio.new_event_loop()
    transport = httpx.ASGITransport(app=create_sbps_app(_config()))
    http = httpx.AsyncClient(transport=transport, base_url="http://sbps/")
    yield Client(loop, http)
    loop.run_until_complete(http.aclose())
    loop.close()


def _answer_is_xml(response: httpx.Response, *, ok_allowed: bool = True) -> str:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml;charset=Shift_JIS"
    root = parse(response.content)
    result = next(c.text for c in root.children if c.tag == "res_result")
    if result == "NG" or not ok_allowed:
        assert result == "NG" and "id" not in root.attrs
    return result


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_any_bytes_are_an_ng_document(client: Client, body: bytes) -> None:
    response = client.post(body)
    _answer_is_xml(response, ok_allowed=False)


_VALUE = st.text(
    st.characters(codec="shift_jis", exclude_categories=["Cs"], exclude_characters="¥‾"),
    max_size=12,
)
_NAMES = st.sampled_from(
    ["cust_code", "order_id", "amount", "item_name", "token", "token_key", "tracking_id",
     "sps_transaction_id", "dealings_type", "encrypted_flg", "cust_manage_flg", "free1"]
)  # fmt: skip


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from(IDS),
    st.lists(st.tuples(_NAMES, _VALUE), max_size=6),
    st.booleans(),
)
def test_well_hashed_requests_with_odd_values_never_crash(
    client: Client, request_id: str, items: list[tuple[str, str]], block: bool
) -> None:
    fields = [("pay_option_manage", items)] if block else items
    try:
        body = build(request_id, fields)
    except UnicodeEncodeError:
        return  # not sendable as Shift_JIS at all
    _answer_is_xml(client.post(body))


def test_base64_of_non_shift_jis_is_an_attribute_error(client: Client) -> None:
    bad = base64.b64encode(b"\x82").decode()  # a lead byte alone
    body = build("MG01-00101-101", [("order_id", "o"), ("free1", "x")]).replace(
        b"<free1>eA==</free1>", f"<free1>{bad}</free1>".encode()
    )
    response = client.post(body)
    assert b"<res_err_code>10104009</res_err_code>" in response.content


async def test_concurrent_authorizations_of_one_order_charge_once() -> None:
    app = create_sbps_app(_config())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sbps/") as http:
        tokens = [await make_token(http) for _ in range(5)]
        bodies = [
            build(
                "ST01-00131-101",
                [
                    ("cust_code", "c"),
                    ("order_id", "same-order"),
                    ("item_id", "i"),
                    ("amount", "100"),
                    ("pay_method_info", [("dealings_type", "10")]),
                    ("pay_option_manage", [("token", t.token), ("token_key", t.token_key)]),
                ],
            )
            for t in tokens
        ]
        answers = await asyncio.gather(
            *(http.post("api/xmlapi.do", content=b, auth=AUTH) for b in bodies)
        )
    codes = sorted(re.findall(r"<res_err_code>(\w+)<|<res_err_code/>", a.text)[0] for a in answers)
    assert codes == ["", "10196999", "10196999", "10196999", "10196999"], codes
    assert len(app.state.sbps.ledger) == 1
