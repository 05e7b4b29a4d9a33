"""rt=0: the synchronous `OK`/code body and the kickback GET sent in the background."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from app.sandbox import SandboxConfig, cards, create_sandbox_app
from app.sandbox.state import SimState
from app.sandbox.testing import KickbackSink, make_token, pay_by_token

KICKBACK_URL = "http://merchant.test/kickback"
EM = "taro@example.com"


@dataclass
class Harness:
    app: FastAPI
    http: httpx.AsyncClient
    sink: KickbackSink

    @property
    def sim(self) -> SimState:
        sim: SimState = self.app.state.sim
        return sim


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    sink = KickbackSink()
    app = create_sandbox_app(
        SandboxConfig(kickback_url=KICKBACK_URL, kickback_transport=sink.transport())
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield Harness(app, http, sink)


async def test_approved_rt0_says_ok_and_kicks_back(h: Harness) -> None:
    response = await pay_by_token(
        h.http, rt="0", cod="order-9", am=1000, tx=80, sf=500, extra={"memo": "日本 語"}
    )
    assert response.text == "OK"
    await h.sim.drain()
    [kb] = h.sink.received
    assert kb.method == "GET" and kb.path == "/kickback"
    assert list(kb.params) == [
        "gid",
        "rst",
        "ap",
        "ec",
        "god",
        "cod",
        "am",
        "tx",
        "sf",
        "ta",
        "memo",
    ]
    assert kb.params["gid"] == "10000001" and kb.params["rst"] == "1" and kb.params["ec"] == ""
    assert (kb.params["cod"], kb.params["ta"], kb.params["memo"]) == ("order-9", "1580", "日本 語")
    assert len(kb.params["ap"]) == 7


async def test_product_and_registration_fields(h: Harness) -> None:
    three_ds = {"iid": "ITEM002", "em": EM}
    tkn = await make_token(h.http, three_ds=three_ds)
    form = {"aid": "100001", "rt": "0", "tkn": tkn, "uid": "buyer1", **three_ds}
    assert (await h.http.post("gateway/gateway_token.aspx", data=form)).text == "OK"
    await h.sim.drain()
    params = h.sink.received[0].params
    assert (params["id"], params["ps"]) == ("rpitem002", "pw2980b")
    assert params["uid"] == "buyer1" and params["num"] == "1" and len(params["key"]) == 10
    assert params["ta"] == str(2980 + 298 + 500)


async def test_decline_rt0_body_is_the_code(h: Harness) -> None:
    response = await pay_by_token(h.http, rt="0", card=cards.CARD_DECLINE_G55)
    assert response.text == "G55"
    await h.sim.drain()
    [kb] = h.sink.received
    assert (kb.params["rst"], kb.params["ec"]) == ("2", "G55")


async def test_3ds_failure_kicks_back_with_the_order(h: Harness) -> None:
    response = await pay_by_token(h.http, rt="0", card=cards.CARD_3DS_FAIL, cod="o-3ds")
    assert response.text == "ER900"
    await h.sim.drain()
    [kb] = h.sink.received
    assert (kb.params["gid"], kb.params["rst"], kb.params["ec"], kb.params["cod"]) == (
        "0",
        "2",
        "ER900",
        "o-3ds",
    )


async def test_validation_errors_send_nothing(h: Harness) -> None:
    response = await pay_by_token(h.http, rt="0", extra={"jb": "NOPE"})
    assert response.text == "ER051"
    await h.sim.drain()
    assert h.sink.received == []


async def test_rt1_sends_nothing(h: Harness) -> None:
    await pay_by_token(h.http)
    await h.sim.drain()
    assert h.sink.received == []


async def test_duplicates_and_delay(h: Harness) -> None:
    await h.http.post("_sandbox/config", json={"kickback_duplicates": 3, "kickback_delay": 0.2})
    started = time.monotonic()
    assert (await pay_by_token(h.http, rt="0")).text == "OK"
    assert h.sink.received == []  # the answer did not wait for the kickback
    await h.sim.drain()
    assert time.monotonic() - started >= 0.2
    assert len(h.sink.received) == 3
    assert len({kb.raw_query for kb in h.sink.received}) == 1
    log = (await h.http.get("_sandbox/kickbacks")).json()
    assert [entry["attempt"] for entry in log] == [1, 2, 3]
    assert all(entry["status"] == 200 for entry in log)


async def test_failed_delivery_is_logged(h: Harness) -> None:
    h.sink.status_code = 500
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    assert (await h.http.get("_sandbox/kickbacks")).json()[0]["status"] == 500

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    h.sim.config.kickback_transport = httpx.MockTransport(refuse)
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    last = (await h.http.get("_sandbox/kickbacks")).json()[-1]
    assert last["status"] is None and "ConnectError" in last["error"]


async def test_no_url_means_no_kickback(h: Harness) -> None:
    h.sim.config.kickback_url = ""
    assert (await pay_by_token(h.http, rt="0")).text == "OK"
    await h.sim.drain()
    assert h.sink.received == []


async def test_transport_swapped_after_start(h: Harness) -> None:
    # What the host app does: it creates the simulator first, then points kickbacks at itself.
    other = KickbackSink()
    h.sim.config.kickback_transport = other.transport()
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    assert len(other.received) == 1 and h.sink.received == []


async def test_sales_rt0_has_no_kickback_but_reauth_and_onetouch_do(h: Harness) -> None:
    gid = (await pay_by_token(h.http, jb="AUTH")).text.split(",")[0]
    sales = {"aid": "100001", "jb": "SALES", "rt": "0", "tid": gid}
    assert (await h.http.post("gateway/gateway.aspx", data=sales)).text == "OK"
    reauth = {"aid": "100001", "rt": "0", "tid": gid, "am": "1500", "tx": "0", "sf": "0"}
    assert (await h.http.post("gateway/re_auth.aspx", data=reauth)).text == "OK"
    await h.sim.drain()
    [kb] = h.sink.received
    assert kb.params["gid"] == "10000002" and kb.params["am"] == "1500"

    fields = (await pay_by_token(h.http, uid="member1")).text.split(",")
    key = fields[13]
    one = {
        "aid": "100001",
        "rt": "0",
        "cmd": "4",
        "uid": "member1",
        "key": key,
        "num": "1",
        "jb": "CAPTURE",
        "am": "700",
        "tx": "0",
        "sf": "0",
        "cod": "one-1",
    }
    assert (await h.http.post("gateway/onetouch.aspx", data=one)).text == "OK"
    await h.sim.drain()
    assert h.sink.received[-1].params["cod"] == "one-1"


async def test_free_parameters_come_back_in_every_answer_and_kickback(h: Harness) -> None:
    """Seed 002 item 13 (その他): what the request carried as free key=value data is echoed by
    token, one-touch and re-authorization payments, in the rt=1 line and in the kickback,
    and by a refused 3-D Secure's kickback too: our payment id rides on it (payment_ref)."""
    ref = {"payment_ref": "pay_0123456789abcdef0123456789abcdef"}
    echoed = "payment_ref=pay_0123456789abcdef0123456789abcdef"
    line = (await pay_by_token(h.http, jb="AUTH", uid="member2", extra=ref)).text
    assert line.split(",")[-1] == echoed
    fields = line.split(",")
    gid, key = fields[0], fields[13]
    reauth = {"aid": "100001", "tid": gid, "am": "1500", "tx": "0", "sf": "0", **ref}
    assert (await h.http.post("gateway/re_auth.aspx", data={**reauth, "rt": "1"})).text.endswith(
        echoed
    )
    one = {"aid": "100001", "cmd": "4", "uid": "member2", "key": key, "num": "1", "jb": "AUTH"}
    one |= {"am": "700", "tx": "0", "sf": "0", **ref}
    assert (await h.http.post("gateway/onetouch.aspx", data={**one, "rt": "1"})).text.endswith(
        echoed
    )
    await h.sim.drain()
    assert h.sink.received == []

    assert (await pay_by_token(h.http, rt="0", extra=ref)).text == "OK"
    assert (await h.http.post("gateway/onetouch.aspx", data={**one, "rt": "0"})).text == "OK"
    new_gid = str(int(gid) + 1)  # the first re-authorization's gid, still authorized
    again = {**reauth, "tid": new_gid, "rt": "0"}
    assert (await h.http.post("gateway/re_auth.aspx", data=again)).text == "OK"
    tkn = await make_token(
        h.http, card=cards.CARD_3DS_FAIL, three_ds={"am": "1000", "tx": "0", "sf": "0", "em": EM}
    )
    refused = {"aid": "100001", "jb": "AUTH", "rt": "0", "tkn": tkn, "am": "1000", "em": EM}
    refused |= {"tx": "0", "sf": "0", "cod": "o-ref", **ref}
    assert (await h.http.post("gateway/gateway_token.aspx", data=refused)).text == "ER900"
    await h.sim.drain()
    assert len(h.sink.received) == 4
    assert all(kb.params.get("payment_ref") == ref["payment_ref"] for kb in h.sink.received)
