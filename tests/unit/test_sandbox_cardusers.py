"""carduser.aspx (every cmd), carduser_token.aspx and onetouch.aspx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest

from app.sandbox import SandboxConfig, cards, create_sandbox_app
from app.sandbox.clock import JST
from app.sandbox.testing import make_token

USER_URL = "gateway/carduser.aspx"
CARD_URL = "gateway/carduser_token.aspx"
ONETOUCH_URL = "gateway/onetouch.aspx"
ZERO_3DS = {"am": "0", "tx": "0", "sf": "0", "em": "hanako@example.com"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


async def call(client: httpx.AsyncClient, url: str, **params: str) -> list[str]:
    response = await client.post(url, data={"aid": "100001", **params})
    assert response.status_code == 200
    return response.text.split(",")


async def register(client: httpx.AsyncClient, uid: str = "user001") -> str:
    fields = await call(
        client, USER_URL, cmd="0", uid=uid, em="hanako@example.com", pn="0312345678"
    )
    assert fields[:3] == ["1", "", uid] and len(fields) == 4
    return fields[3]


async def add_card(
    client: httpx.AsyncClient, uid: str, key: str, card: str = cards.CARD_OK, ed: str | None = None
) -> list[str]:
    tkn = await make_token(client, card=card, ed=ed, three_ds=ZERO_3DS)
    return await call(client, CARD_URL, cmd="4", uid=uid, key=key, tkn=tkn)


async def test_register_lookup_update_delete(client: httpx.AsyncClient) -> None:
    key = await register(client)
    assert re.fullmatch(r"[A-Za-z0-9]{10}", key)
    assert await call(client, USER_URL, cmd="0", uid="user001") == ["2", "ER652", "user001", ""]
    assert await call(client, USER_URL, cmd="3", uid="user001") == [
        "1",
        "",
        "user001",
        key,
        "hanako@example.com",
        "0312345678",
    ]
    assert await call(client, USER_URL, cmd="1", uid="user001", key=key, em="new@example.com") == [
        "1",
        "",
        "user001",
        key,
    ]
    lookup = await call(client, USER_URL, cmd="3", uid="user001", key=key)
    assert lookup[4:] == ["new@example.com", "0312345678"]
    assert await call(client, USER_URL, cmd="2", uid="user001", key=key) == [
        "1",
        "",
        "user001",
        key,
    ]
    assert (await call(client, USER_URL, cmd="3", uid="user001"))[:2] == ["2", "ER653"]
    assert (await call(client, USER_URL, cmd="0", uid="user001"))[:2] == ["2", "ER653"]


async def test_carduser_errors(client: httpx.AsyncClient) -> None:
    key = await register(client)
    assert await call(client, USER_URL, cmd="3", uid="nobody") == [
        "2",
        "ER147",
        "nobody",
        "",
        "",
        "",
    ]
    assert (await call(client, USER_URL, cmd="1", uid="user001", key="WRONGKEY00"))[:2] == [
        "2",
        "ER148",
    ]
    assert (await call(client, USER_URL, cmd="1", uid="user001"))[:2] == ["2", "ER148"]
    assert await call(client, USER_URL, cmd="6", uid="user001", key=key, num="9") == [
        "2",
        "ER149",
        "user001",
        key,
        "9",
        "",
        "",
        "",
        "",
    ]
    assert (await call(client, USER_URL, cmd="4", uid="user001", key=key))[:2] == ["2", "ER654"]
    assert (await call(client, USER_URL, cmd="7", uid="user001", key=key))[:2] == ["2", "ER069"]
    assert (await call(client, USER_URL, cmd="0", uid="bad-uid"))[:2] == ["2", "ER147"]
    assert (await call(client, USER_URL, cmd="0", uid="x1", em="nope"))[:2] == ["2", "ER059"]
    assert (await call(client, USER_URL, cmd="0", uid="x1", pn="abc"))[:2] == ["2", "ER060"]


async def test_free_parameters_are_echoed(client: httpx.AsyncClient) -> None:
    fields = await call(client, USER_URL, cmd="0", uid="user009", rt="1", ref="abc")
    assert fields[0] == "1" and fields[-1] == "ref=abc" and len(fields) == 5


async def test_cards_register_lookup_update_delete(client: httpx.AsyncClient) -> None:
    key = await register(client)
    expiry = f"{(datetime.now(JST).year + 2) % 100:02d}07"
    assert await add_card(client, "user001", key, ed=expiry) == ["1", "", "user001", key, "1"]
    assert await add_card(client, "user001", key, card="5555555555554444") == [
        "1",
        "",
        "user001",
        key,
        "2",
    ]
    assert await call(client, USER_URL, cmd="6", uid="user001", key=key, num="1") == [
        "1",
        "",
        "user001",
        key,
        "1",
        "************1111",
        expiry,
        "TARO",
        "YAMADA",
    ]

    # Update card 1 in place with a new token.
    tkn = await make_token(client, card="3530111333300000", fn="Hanako", three_ds=ZERO_3DS)
    assert await call(client, CARD_URL, cmd="4", uid="user001", key=key, num="1", tkn=tkn) == [
        "1",
        "",
        "user001",
        key,
        "1",
    ]
    card1 = await call(client, USER_URL, cmd="6", uid="user001", key=key, num="1")
    assert card1[5] == "************0000" and card1[7] == "HANAKO"

    assert await call(client, USER_URL, cmd="5", uid="user001", key=key, num="2") == [
        "1",
        "",
        "user001",
        key,
        "2",
    ]
    assert (await call(client, USER_URL, cmd="6", uid="user001", key=key, num="2"))[1] == "ER149"
    # Numbers are never reused.
    assert (await add_card(client, "user001", key))[4] == "3"


async def test_card_registration_needs_zero_amount_3ds(client: httpx.AsyncClient) -> None:
    key = await register(client)
    base = {"cmd": "4", "uid": "user001", "key": key}
    no_3ds = await make_token(client)
    assert await call(client, CARD_URL, **base, tkn=no_3ds) == ["2", "ER901", "user001", key, ""]
    priced = await make_token(client, three_ds={"am": "100", "tx": "0", "sf": "0", "em": "a@b.jp"})
    assert (await call(client, CARD_URL, **base, tkn=priced))[1] == "ER901"
    failed = await make_token(client, card=cards.CARD_3DS_FAIL, three_ds=ZERO_3DS)
    assert (await call(client, CARD_URL, **base, tkn=failed))[1] == "ER900"
    good = await make_token(client, three_ds=ZERO_3DS)
    assert (await call(client, CARD_URL, **base, tkn=good, cn=cards.CARD_OK))[1] == "ER586"
    assert (await call(client, CARD_URL, **base, tkn=good))[0] == "1"
    assert (await call(client, CARD_URL, **base, tkn=good))[1] == "ER584"
    assert (await call(client, CARD_URL, **base))[1] == "ER583"
    assert (await call(client, CARD_URL, **{**base, "cmd": "3"}, tkn=good))[1] == "ER069"
    assert (await call(client, CARD_URL, **base, num="5", tkn=good))[1] == "ER149"


async def test_card_registration_without_3ds_when_off(client: httpx.AsyncClient) -> None:
    await client.post("_sandbox/config", json={"require_3ds": False})
    key = await register(client)
    tkn = await make_token(client)
    assert (await call(client, CARD_URL, cmd="4", uid="user001", key=key, tkn=tkn))[0] == "1"


async def onetouch(client: httpx.AsyncClient, uid: str, key: str, **params: str) -> list[str]:
    base = {
        "rt": "1",
        "cmd": "4",
        "uid": uid,
        "key": key,
        "num": "1",
        "jb": "AUTH",
        "am": "2000",
        "tx": "200",
        "sf": "0",
    }
    return await call(client, ONETOUCH_URL, **{**base, **params})


async def test_onetouch_charges_the_stored_card(client: httpx.AsyncClient) -> None:
    key = await register(client)
    await add_card(client, "user001", key, card=cards.CARD_3DS_CHALLENGE)  # no 3DS at onetouch
    fields = await onetouch(client, "user001", key, cod="one1", em="changed@example.com")
    assert (
        len(fields) == 13
        and fields[1] == "1"
        and fields[5:10] == ["one1", "2000", "200", "0", "2200"]
    )
    [row] = (await client.get("_sandbox/ledger")).json()
    assert (row["uid"], row["num"], row["card_last4"], row["status"]) == (
        "user001",
        1,
        "0317",
        "authorized",
    )
    assert (await call(client, USER_URL, cmd="3", uid="user001"))[4] == "changed@example.com"
    product = await onetouch(client, "user001", key, jb="", am="", tx="", sf="", iid="ITEM001")
    assert product[1] == "1" and product[10:12] == ["rpitem001", "pw1000a"]


async def test_onetouch_errors_and_declines(client: httpx.AsyncClient) -> None:
    key = await register(client)
    await add_card(client, "user001", key, card=cards.CARD_DECLINE_G55)
    assert (await onetouch(client, "user001", key))[1:4] == ["2", "", "G55"]
    assert (await onetouch(client, "user001", key, cmd="2"))[3] == "ER069"
    assert (await onetouch(client, "user001", key, num="2"))[3] == "ER149"
    assert (await onetouch(client, "user001", key, num="01"))[3] == "ER149"  # 半角数字(1)
    assert (await onetouch(client, "user001", "x" * 10))[3] == "ER148"
    assert (await onetouch(client, "nobody", key))[3] == "ER147"
    assert (await onetouch(client, "user001", key, jb="CHECK"))[3] == "ER051"
    assert (await onetouch(client, "user001", key, rt="0", am="")) == ["ER061"]


async def test_stored_card_can_expire(client: httpx.AsyncClient) -> None:
    key = await register(client)
    now = datetime.now(JST)
    await add_card(client, "user001", key, ed=f"{now.year % 100:02d}{now.month:02d}")
    assert (await onetouch(client, "user001", key))[1] == "1"
    month = timedelta(days=32).total_seconds()
    await client.post("_sandbox/clock", json={"advance_seconds": month})
    assert (await onetouch(client, "user001", key))[1:4] == ["2", "", "G83"]
