"""gateway.aspx SALES/CANCEL and re_auth.aspx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from app.sandbox import SandboxConfig, create_sandbox_app
from app.sandbox.clock import JST
from app.sandbox.testing import make_token, pay_by_token

OPS_URL = "gateway/gateway.aspx"
REAUTH_URL = "gateway/re_auth.aspx"
DAY = timedelta(days=1).total_seconds()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


async def op(client: httpx.AsyncClient, jb: str, tid: str, rt: str = "1") -> list[str]:
    data = {"aid": "100001", "jb": jb, "rt": rt, "tid": tid}
    return (await client.post(OPS_URL, data=data)).text.split(",")


async def reauth(client: httpx.AsyncClient, tid: str, **params: str) -> list[str]:
    data = {"aid": "100001", "rt": "1", "tid": tid, "am": "1200", "tx": "120", "sf": "0", **params}
    return (await client.post(REAUTH_URL, data=data)).text.split(",")


async def ledger(client: httpx.AsyncClient) -> dict[int, dict[str, Any]]:
    return {row["gid"]: row for row in (await client.get("_sandbox/ledger")).json()}


async def new_payment(client: httpx.AsyncClient, jb: str = "AUTH", **kw: Any) -> str:
    fields = (await pay_by_token(client, jb=jb, cod="ord1", **kw)).text.split(",")
    assert fields[1] == "1"
    return fields[0]


async def test_sales_then_cancel(client: httpx.AsyncClient) -> None:
    gid = await new_payment(client)
    sales = await op(client, "SALES", gid)
    assert sales[:2] == [gid, "1"] and sales[5:10] == ["ord1", "1000", "0", "0", "1000"]
    row = (await ledger(client))[int(gid)]
    assert (row["jb"], row["status"]) == ("SALES", "captured")
    assert (await op(client, "SALES", gid))[:4] == ["0", "2", "", "ER032"]
    assert (await op(client, "CANCEL", gid))[:2] == [gid, "1"]
    row = (await ledger(client))[int(gid)]
    assert (row["jb"], row["status"]) == ("CANCEL", "canceled") and row["canceled_at"]
    assert (await op(client, "CANCEL", gid))[3] == "ER033"
    assert (await op(client, "SALES", gid))[3] == "ER032"


async def test_cancel_an_auth_and_sales_on_a_capture(client: httpx.AsyncClient) -> None:
    auth = await new_payment(client)
    assert (await op(client, "CANCEL", auth))[1] == "1"
    capture = await new_payment(client, jb="CAPTURE")
    assert (await op(client, "SALES", capture))[3] == "ER032"
    assert (await op(client, "CANCEL", capture, rt="0")) == ["OK"]


async def test_ops_errors(client: httpx.AsyncClient) -> None:
    assert (await op(client, "SALES", "99999999"))[3] == "ER053"
    assert (await op(client, "SALES", "abc"))[3] == "ER053"
    assert (await op(client, "SALES", ""))[3] == "ER053"
    gid = await new_payment(client)
    assert (await op(client, "REFUND", gid))[3] == "ER051"
    assert (await op(client, "SALES", gid, rt="x"))[3] == "ER052"
    assert await op(client, "SALES", "99999999", rt="0") == ["ER053"]


async def test_declined_payments_cannot_be_captured_or_canceled(client: httpx.AsyncClient) -> None:
    from app.sandbox import cards

    gid = (await pay_by_token(client, jb="AUTH", card=cards.CARD_DECLINE_G12)).text.split(",")[0]
    assert (await op(client, "SALES", gid))[3] == "ER032"
    assert (await op(client, "CANCEL", gid))[3] == "ER033"
    assert (await reauth(client, gid))[3] == "ER033"


async def test_capture_window_is_90_days(client: httpx.AsyncClient) -> None:
    gid = await new_payment(client)
    await client.post("_sandbox/clock", json={"advance_seconds": 91 * DAY})
    assert (await op(client, "SALES", gid))[3] == "ER032"


async def test_reauth_replaces_the_payment(client: httpx.AsyncClient) -> None:
    old = await new_payment(client)
    fields = await reauth(client, old, em="new@example.com")
    new = fields[0]
    assert int(new) == int(old) + 1 and fields[1] == "1"
    assert fields[5:10] == ["ord1", "1200", "120", "0", "1320"]
    rows = await ledger(client)
    assert (rows[int(old)]["status"], rows[int(old)]["jb"]) == ("canceled", "CANCEL")
    assert rows[int(new)]["reauth_of"] == int(old)
    assert (rows[int(new)]["status"], rows[int(new)]["jb"]) == ("authorized", "AUTH")
    # The old one is gone for good; the new one can be captured.
    assert (await reauth(client, old))[3] == "ER033"
    assert (await op(client, "SALES", new))[1] == "1"
    captured = await reauth(client, new, am="900")
    assert (await ledger(client))[int(captured[0])]["jb"] == "CAPTURE"


async def test_reauth_refusals(client: httpx.AsyncClient) -> None:
    assert (await reauth(client, "424242"))[3] == "ER053"
    gid = await new_payment(client)
    assert (await reauth(client, gid, am="123456789"))[3] == "ER061"
    assert (await reauth(client, gid, am="0", tx="0"))[3] == "ER061"
    assert (await reauth(client, gid, tx=""))[3] == "ER062"
    assert (await reauth(client, gid, sf="x"))[3] == "ER063"
    assert (await reauth(client, gid, pn="1" * 16))[3] == "ER060"
    assert (await reauth(client, gid, em="a" * 240 + "@example.com"))[1] == "1"

    tkn = await make_token(client, three_ds={"iid": "ITEM001", "em": "a@b.jp"})
    product = {"aid": "100001", "rt": "1", "tkn": tkn, "iid": "ITEM001", "em": "a@b.jp"}
    product_gid = (await client.post("gateway/gateway_token.aspx", data=product)).text[:8]
    assert (await reauth(client, product_gid))[3] == "ER066"

    zero = {"am": "0", "tx": "0", "sf": "0", "em": "a@b.jp"}
    tkn = await make_token(client, three_ds=zero)
    check = {"aid": "100001", "jb": "CHECK", "rt": "1", "tkn": tkn, **zero}
    check_gid = (await client.post("gateway/gateway_token.aspx", data=check)).text[:8]
    assert (await reauth(client, check_gid))[3] == "ER030"


async def test_reauth_only_this_or_last_month(client: httpx.AsyncClient) -> None:
    gid = await new_payment(client)
    await client.post("_sandbox/clock", json={"advance_seconds": 65 * DAY})
    assert (await reauth(client, gid))[3] == "ER030"


async def test_reauth_can_be_declined_and_keeps_the_old_payment(
    client: httpx.AsyncClient,
) -> None:
    # A card valid through this month authorizes now and is expired next month (still in range).
    now = datetime.now(JST)
    tkn = await make_token(
        client,
        ed=f"{now.year % 100:02d}{now.month:02d}",
        three_ds={"am": "1000", "tx": "0", "sf": "0", "em": "a@b.jp"},
    )
    data = {
        "aid": "100001",
        "jb": "AUTH",
        "rt": "1",
        "tkn": tkn,
        "am": "1000",
        "tx": "0",
        "sf": "0",
        "em": "a@b.jp",
    }
    old = (await client.post("gateway/gateway_token.aspx", data=data)).text.split(",")[0]
    next_month = (now.replace(day=28) + timedelta(days=4)).replace(day=1, hour=1)
    advance = (next_month - now).total_seconds()
    await client.post("_sandbox/clock", json={"advance_seconds": advance})
    fields = await reauth(client, old)
    assert fields[1:4] == ["2", "", "G83"]
    rows = await ledger(client)
    assert rows[int(old)]["status"] == "authorized"
    assert rows[int(fields[0])]["status"] == "declined"
