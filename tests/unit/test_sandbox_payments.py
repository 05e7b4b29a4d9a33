"""gateway_token.aspx: token payments with 3-D Secure, the positional answer, registration,
declines, token rules, validation errors and lost answers."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.sandbox import SandboxConfig, cards, create_sandbox_app
from app.sandbox.state import SimState
from app.sandbox.testing import make_token, pay_by_token

PAY_URL = "gateway/gateway_token.aspx"
EM = "taro@example.com"
AMOUNTS = {"am": "1000", "tx": "100", "sf": "0"}
THREE_DS = {**AMOUNTS, "em": EM}


@pytest.fixture
def app() -> FastAPI:
    return create_sandbox_app(SandboxConfig(slow_seconds=0.2, hang_seconds=0.3))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


def sim_of(app: FastAPI) -> SimState:
    sim: SimState = app.state.sim
    return sim


def form(tkn: str, **overrides: str) -> dict[str, str]:
    values = {"aid": "100001", "jb": "AUTH", "rt": "1", "tkn": tkn, **AMOUNTS, "em": EM}
    values.update(overrides)
    return {k: v for k, v in values.items() if v != "<omit>"}


async def pay(client: httpx.AsyncClient, tkn: str, **overrides: str) -> str:
    response = await client.post(PAY_URL, data=form(tkn, **overrides))
    assert response.status_code == 200
    return response.text


async def ledger(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await client.get("_sandbox/ledger")).json()
    return rows


async def test_auth_answer_layout(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    text = await pay(client, tkn, cod="order1")
    fields = text.split(",")
    assert len(fields) == 13 and fields[12] == ""
    gid, rst, ap, ec, god, cod, am, tx, sf, ta, id_, ps = fields[:12]
    assert (gid, rst, ec, god, cod) == ("10000001", "1", "", "20000001", "order1")
    assert re.fullmatch(r"\d{7}", ap)
    assert (am, tx, sf, ta, id_, ps) == ("1000", "100", "0", "1100", "", "")
    [row] = await ledger(client)
    assert row["status"] == "authorized" and row["jb"] == "AUTH" and row["card_last4"] == "1111"


async def test_capture_and_check(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    assert (await pay(client, tkn, jb="CAPTURE")).split(",")[1] == "1"
    zero = {"am": "0", "tx": "0", "sf": "0", "em": EM}
    tkn = await make_token(client, three_ds=zero)
    text = await pay(client, tkn, jb="CHECK", am="<omit>", tx="<omit>", sf="<omit>")
    assert text.split(",")[1] == "1" and text.split(",")[6:10] == ["0", "0", "0", "0"]
    assert [(r["jb"], r["status"]) for r in await ledger(client)] == [
        ("CAPTURE", "captured"),
        ("CHECK", "authorized"),
    ]


async def test_free_parameters_are_echoed_last(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    text = await pay(client, tkn, memo="goods-code-01", note="a,b")
    assert text.endswith(",,,memo=goods-code-01,note=a%2Cb")


async def test_product_payment_returns_credentials(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds={"iid": "ITEM001", "pn": "0312345678"})
    text = await pay(
        client,
        tkn,
        jb="<omit>",
        am="<omit>",
        tx="<omit>",
        sf="<omit>",
        em="<omit>",
        iid="ITEM001",
        pn="0312345678",
    )
    fields = text.split(",")
    assert fields[1] == "1" and fields[6:12] == ["1000", "100", "0", "1100", "rpitem001", "pw1000a"]
    assert (await ledger(client))[0]["jb"] == "CAPTURE"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"am": "1000"}, "ER066"),
        ({"iid": "NOPE"}, "ER005"),
        ({"iid": "ITEM-001"}, "ER066"),  # 半角英数 (seed 000 p.18)
        # No jb with iid (seed 000 pp.13, 18): refused, not ignored.
        ({"jb": "AUTH"}, "ER051"),
        ({"jb": "CAPTURE"}, "ER051"),
    ],
)
async def test_product_payment_errors(
    client: httpx.AsyncClient, extra: dict[str, str], code: str
) -> None:
    tkn = await make_token(client, three_ds={"iid": "ITEM001", "em": EM})
    overrides = {
        **{"jb": "<omit>", "am": "<omit>", "tx": "<omit>", "sf": "<omit>"},
        **{"iid": "ITEM001", **extra},
    }
    assert (await pay(client, tkn, **overrides)).split(",")[3] == code


async def test_registration_in_the_payment(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    fields = (await pay(client, tkn, uid="cust0001")).split(",")
    assert len(fields) == 16
    uid, key, num = fields[12:15]
    assert (uid, num) == ("cust0001", "1") and re.fullmatch(r"[A-Za-z0-9]{10}", key)
    users = (await client.get("_sandbox/users")).json()
    assert users[0]["uid"] == "cust0001" and users[0]["em"] == EM
    [card] = users[0]["cards"]
    assert card | {"ed": ""} == {
        "num": 1,
        "cn": "************1111",
        "ed": "",
        "fn": "TARO",
        "ln": "YAMADA",
    }
    assert (await ledger(client))[0]["uid"] == "cust0001"

    # ER652 is a validation error: nothing charged, and the token is still usable.
    tkn = await make_token(client, three_ds=THREE_DS)
    assert await pay(client, tkn, uid="cust0001") == "0,2,,ER652,,,0,0,0,0,,,cust0001,,,"
    assert len(await ledger(client)) == 1
    assert (await pay(client, tkn)).split(",")[1] == "1"


async def test_declined_registration_registers_nobody(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, card=cards.CARD_DECLINE_G12, three_ds=THREE_DS)
    fields = (await pay(client, tkn, uid="cust0002")).split(",")
    assert fields[1:4] == ["2", "", "G12"] and fields[12:15] == ["cust0002", "", ""]
    assert (await client.get("_sandbox/users")).json() == []


@pytest.mark.parametrize(
    ("card", "code"),
    [
        (cards.CARD_DECLINE_G12, "G12"),
        (cards.CARD_DECLINE_G55, "G55"),
        (cards.CARD_DECLINE_G83, "G83"),
    ],
)
async def test_declines(client: httpx.AsyncClient, card: str, code: str) -> None:
    fields = (await pay_by_token(client, card=card, cod="d1")).text.split(",")
    assert fields[0] == "10000001" and fields[1:4] == ["2", "", code]
    assert fields[5:10] == ["d1", "1000", "0", "0", "1000"]
    [row] = await ledger(client)
    assert row["status"] == "declined" and row["ec"] == code and row["ap"] == ""


@pytest.mark.parametrize(
    ("three_ds", "overrides"),
    [
        ({**AMOUNTS, "em": EM}, {"am": "1001"}),
        ({**AMOUNTS, "em": EM}, {"em": "other@example.com"}),
        ({**AMOUNTS, "em": EM}, {"pn": "0312345678"}),
        ({"iid": "ITEM001", "em": EM}, {}),
        (None, {}),
    ],
)
async def test_3ds_binding_mismatch_is_er901(
    client: httpx.AsyncClient, three_ds: dict[str, str] | None, overrides: dict[str, str]
) -> None:
    tkn = await make_token(client, three_ds=three_ds)
    assert await pay(client, tkn, **overrides) == "0,2,,ER901,,,0,0,0,0,,,"
    assert await ledger(client) == []


async def test_3ds_failure_is_er900_and_consumes_the_token(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, card=cards.CARD_3DS_FAIL, three_ds=THREE_DS)
    assert await pay(client, tkn) == "0,2,,ER900,,,0,0,0,0,,,"
    assert await ledger(client) == []
    assert (await pay(client, tkn)).split(",")[3] == "ER584"


async def test_3ds_challenge_outcomes(client: httpx.AsyncClient) -> None:
    done = await make_token(client, card=cards.CARD_3DS_CHALLENGE, three_ds=THREE_DS)
    assert (await pay(client, done)).split(",")[1] == "1"
    canceled = await make_token(
        client, card=cards.CARD_3DS_CHALLENGE, three_ds=THREE_DS, challenge="cancel"
    )
    assert (await pay(client, canceled)).split(",")[3] == "ER900"


async def test_3ds_not_required_when_switched_off(client: httpx.AsyncClient) -> None:
    await client.post("_sandbox/config", json={"require_3ds": False})
    tkn = await make_token(client)
    assert (await pay(client, tkn)).split(",")[1] == "1"


async def test_token_rules(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    assert (await pay(client, tkn)).split(",")[1] == "1"
    assert (await pay(client, tkn)).startswith("0,2,,ER584,")  # reused
    assert (await pay(client, "dW5rbm93bg==")).startswith("0,2,,ER584,")  # unknown
    assert (await pay(client, "<omit>")).startswith("0,2,,ER583,")
    tkn = await make_token(client, three_ds=THREE_DS)
    assert (await pay(client, tkn, cn=cards.CARD_OK)).startswith("0,2,,ER586,")
    await client.post("_sandbox/clock", json={"advance_seconds": 901})
    assert (await pay(client, tkn)).startswith("0,2,,ER585,")


async def test_token_ttl_is_configurable(client: httpx.AsyncClient) -> None:
    await client.post("_sandbox/config", json={"token_ttl_seconds": 60})
    tkn = await make_token(client, three_ds=THREE_DS)
    await client.post("_sandbox/clock", json={"advance_seconds": 61})
    assert (await pay(client, tkn)).startswith("0,2,,ER585,")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aid": "10001"}, "ER050"),
        ({"aid": "100009"}, "ER004"),
        ({"jb": "SALES"}, "ER051"),
        ({"jb": "<omit>"}, "ER051"),
        ({"rt": "2"}, "ER052"),
        ({"cod": "x" * 51}, "ER054"),
        ({"cod": "注文" * 13}, "ER054"),
        # 半角英数または日本語 (seed 000): no symbols, spaces or half-width katakana; 50 bytes
        # counted in UTF-8 (18 kanji: 54 bytes, though 36 in Shift_JIS).
        ({"cod": "order-1"}, "ER054"),
        ({"cod": "pay_0a1b"}, "ER054"),
        ({"cod": "order 1"}, "ER054"),
        ({"cod": "ﾁｭｳﾓﾝ1"}, "ER054"),
        ({"cod": "注文" * 9}, "ER054"),
        ({"em": "bad@"}, "ER059"),
        ({"em": "a" * 96 + "@x.jp"}, "ER059"),
        ({"em": "<omit>"}, "ER059"),
        ({"pn": "03-1234-5678"}, "ER060"),
        ({"pn": "1" * 21}, "ER060"),
        ({"am": "123456789"}, "ER061"),
        ({"am": "<omit>"}, "ER061"),
        ({"am": "0", "tx": "0"}, "ER061"),
        ({"tx": "12345678"}, "ER062"),
        ({"sf": "-1"}, "ER063"),
        ({"md": "11"}, "ER064"),
        ({"md": "61", "pt": "7"}, "ER065"),
        ({"jb": "<omit>", "iid": "bad iid"}, "ER066"),
        ({"uid": "has space"}, "ER147"),
        ({"uid": "u" * 51}, "ER147"),
        ({"memo": "x" * 1020}, "ER001"),
    ],
)
async def test_validation_errors(
    client: httpx.AsyncClient, overrides: dict[str, str], code: str
) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    text = await pay(client, tkn, **overrides)
    assert text.split(",")[:4] == ["0", "2", "", code]
    assert await ledger(client) == []


@pytest.mark.parametrize("cod", ["order1", "注文番号１２３abc", "ご注文ー" * 4, "x" * 50])
async def test_cod_the_seed_allows(client: httpx.AsyncClient, cod: str) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    fields = (await pay(client, tkn, cod=cod)).split(",")
    assert fields[1] == "1" and fields[5] == cod


async def test_rt0_validation_error_is_the_bare_code(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    assert await pay(client, tkn, rt="0", am="x") == "ER061"


async def test_first_error_wins_in_code_order(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    assert (await pay(client, tkn, jb="X", rt="9", am="x")).split(",")[3] == "ER051"
    assert (await pay(client, tkn, rt="9", am="x")).split(",")[3] == "ER052"


async def test_get_query_and_cp932_values(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds=THREE_DS)
    response = await client.get(PAY_URL, params=form(tkn, cod="注文1"))
    assert response.text.split(",")[5] == "注文1"
    tkn = await make_token(client, three_ds=THREE_DS)
    body = "&".join(f"{k}={v}" for k, v in form(tkn).items() if k != "tkn")
    raw = f"{body}&tkn={httpx.QueryParams({'tkn': tkn})['tkn']}".encode()
    raw = raw.replace(b"+", b"%2B").replace(b"/", b"%2F")
    raw += b"&cod=%83e%83X%83g&memo=%93%FA%96%7B"  # Shift_JIS "テスト", "日本"
    response = await client.post(
        PAY_URL, content=raw, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    fields = response.text.split(",")
    assert fields[1] == "1" and fields[5] == "テスト" and fields[-1] == "memo=日本"


async def test_source_ip_allowlist() -> None:
    app = create_sandbox_app(SandboxConfig(allowed_ips=["10.0.0.1"]))
    transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as http:
        # Token creation is the shopper's browser: no IP rule there.
        tkn = await make_token(http, three_ds=THREE_DS)
        assert (await pay(http, tkn)) == "0,2,,ER003,,,0,0,0,0,,,"
        assert (await pay(http, tkn, rt="0")) == "ER003"
        await http.post("_sandbox/config", json={"allowed_ips": ["10.0.0.1", "192.0.2.7"]})
        assert (await pay(http, tkn)).split(",")[1] == "1"


async def test_slow_card_answers_late(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await pay_by_token(client, card=cards.CARD_SLOW)
    assert time.monotonic() - started >= 0.2
    assert response.text.split(",")[1] == "1"


async def test_timeout_card_charges_then_hangs(client: httpx.AsyncClient) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pay_by_token(client, card=cards.CARD_TIMEOUT), 0.2)
    [row] = await ledger(client)
    assert row["status"] == "captured" and row["card_last4"] == "0804"
    # Given long enough, the answer does arrive (hang_seconds=0.3 here).
    response = await pay_by_token(client, card=cards.CARD_TIMEOUT)
    assert response.text.split(",")[1] == "1"


async def test_unexpected_failure_is_er000(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom() -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(sim_of(app), "next_gid", boom)
    tkn = await make_token(client, three_ds=THREE_DS)
    assert await pay(client, tkn) == "0,2,,ER000,,,0,0,0,0,,,"
    tkn = await make_token(client, three_ds=THREE_DS)
    assert await pay(client, tkn, rt="0") == "ER000"


async def test_concurrent_payments_get_distinct_ids(client: httpx.AsyncClient) -> None:
    answers = await asyncio.gather(*(pay_by_token(client, am=100 + i) for i in range(25)))
    gids = [a.text.split(",")[0] for a in answers]
    gods = [a.text.split(",")[4] for a in answers]
    assert len(set(gids)) == len(set(gods)) == 25
    assert sorted(int(g) for g in gids) == list(range(10000001, 10000026))
