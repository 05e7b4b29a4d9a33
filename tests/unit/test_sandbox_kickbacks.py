"""rt=0: the synchronous `OK`/code body and the kickback GET sent in the background."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

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
        h.http, rt="0", cod="order9", am=1000, tx=80, sf=500, extra={"memo": "日本 語"}
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
    assert (kb.params["cod"], kb.params["ta"], kb.params["memo"]) == ("order9", "1580", "日本 語")
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
    response = await pay_by_token(h.http, rt="0", card=cards.CARD_3DS_FAIL, cod="o3ds")
    assert response.text == "ER900"
    await h.sim.drain()
    [kb] = h.sink.received
    assert (kb.params["gid"], kb.params["rst"], kb.params["ec"], kb.params["cod"]) == (
        "0",
        "2",
        "ER900",
        "o3ds",
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
        "cod": "one1",
    }
    assert (await h.http.post("gateway/onetouch.aspx", data=one)).text == "OK"
    await h.sim.drain()
    assert h.sink.received[-1].params["cod"] == "one1"


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
    refused |= {"tx": "0", "sf": "0", "cod": "oref", **ref}
    assert (await h.http.post("gateway/gateway_token.aspx", data=refused)).text == "ER900"
    await h.sim.drain()
    assert len(h.sink.received) == 4
    assert all(kb.params.get("payment_ref") == ref["payment_ref"] for kb in h.sink.received)


HOUR = 3600.0


async def _deliveries(h: Harness) -> list[dict[str, Any]]:
    body: list[dict[str, Any]] = (await h.http.get("_sandbox/kickbacks/deliveries")).json()
    return body


async def test_an_accepted_kickback_is_sent_once(h: Harness) -> None:
    """200 with a non-empty body: accepted, and never sent again however far the clock runs."""
    assert (await pay_by_token(h.http, rt="0")).text == "OK"
    await h.sim.drain()
    h.sim.clock.advance(10 * HOUR)
    await h.sim.drain()
    assert len(h.sink.received) == 1
    [delivery] = await _deliveries(h)
    assert delivery["state"] == "accepted" and delivery["resends"] == 0
    [attempt] = delivery["attempts"]
    assert (attempt["status"], attempt["body"], attempt["accepted"]) == (200, "OK", True)
    assert attempt["kind"] == "first"


@pytest.mark.parametrize(("status", "body"), [(500, b"OK"), (200, b""), (204, b""), (302, b"OK")])
async def test_a_kickback_not_accepted_is_resent_an_hour_later(
    h: Harness, status: int, body: bytes
) -> None:
    """Seed 002: the gateway judges the notice by a non-empty answer; GATEWAY.md: a 200. What
    fails either is sent again after the re-send interval on the simulator's clock."""
    h.sink.status_code, h.sink.body = status, body
    assert (await pay_by_token(h.http, rt="0")).text == "OK"
    await h.sim.drain()
    [delivery] = await _deliveries(h)
    assert delivery["state"] == "waiting" and delivery["attempts"][0]["accepted"] is False
    h.sim.clock.advance(HOUR - 60)
    await h.sim.drain()
    assert len(h.sink.received) == 1  # not due yet
    h.sink.status_code, h.sink.body = 200, b"OK"
    h.sim.clock.advance(60)
    await h.sim.drain()
    assert len(h.sink.received) == 2
    assert h.sink.received[0].raw_query == h.sink.received[1].raw_query
    [delivery] = await _deliveries(h)
    assert delivery["state"] == "accepted" and delivery["resends"] == 1
    assert [(a["kind"], a["accepted"]) for a in delivery["attempts"]] == [
        ("first", False),
        ("resend", True),
    ]
    # The ledger shows the charge's delivery attempts too.
    [row] = (await h.http.get("_sandbox/ledger")).json()
    assert [a["status"] for a in row["kickbacks"]] == [status, 200]


async def test_resends_stop_after_five(h: Harness) -> None:
    h.sink.status_code = 503
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    for _ in range(8):
        h.sim.clock.advance(HOUR)
        await h.sim.drain()
    assert len(h.sink.received) == 6  # the first send and 5 re-sends
    [delivery] = await _deliveries(h)
    assert delivery["state"] == "given_up" and delivery["next_resend_at"] is None


@pytest.mark.parametrize("failure", ["refused", "timeout"])
async def test_refused_or_timed_out_is_resent(h: Harness, failure: str) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        if failure == "refused":
            raise httpx.ConnectError("refused", request=request)
        raise httpx.ReadTimeout("timed out", request=request)

    h.sim.config.kickback_transport = httpx.MockTransport(fail)
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    [attempt] = (await h.http.get("_sandbox/kickbacks")).json()
    assert attempt["status"] is None and attempt["accepted"] is False
    h.sim.config.kickback_transport = h.sink.transport()  # the merchant is back
    h.sim.clock.advance(HOUR)
    await h.sim.drain()
    assert len(h.sink.received) == 1
    assert (await _deliveries(h))[0]["state"] == "accepted"


async def test_the_clock_route_wakes_a_waiting_resend(h: Harness) -> None:
    h.sink.status_code = 500
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    h.sink.status_code = 200
    await h.http.post("_sandbox/clock", json={"advance_seconds": HOUR})
    await h.sim.drain()
    assert len(h.sink.received) == 2


async def test_reset_forgets_waiting_resends(h: Harness) -> None:
    h.sink.status_code = 500
    await pay_by_token(h.http, rt="0")
    await h.sim.drain()
    await h.http.post("_sandbox/reset")
    h.sim.clock.advance(HOUR)
    await h.sim.drain()
    assert len(h.sink.received) == 1
    assert await _deliveries(h) == []
