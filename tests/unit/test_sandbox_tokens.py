"""Token creation and the 3-D Secure endpoints behind CPToken.js / EMV3DSAdapter.js."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.sandbox import SandboxConfig, cards, create_sandbox_app
from app.sandbox.testing import SandboxTokenError, future_expiry, make_token

TOKEN_URL = "gateway/token/create.aspx"
AUTH_URL = "gateway/3ds/authenticate.aspx"
CHALLENGE_URL = "gateway/3ds/challenge.aspx"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


def card_form(**overrides: str) -> dict[str, str]:
    form = {
        "aid": "100001",
        "cn": cards.CARD_OK,
        "ed": future_expiry(),
        "fn": "TARO",
        "ln": "YAMADA",
        "cvv": "123",
        "md": "10",
    }
    form.update(overrides)
    return {k: v for k, v in form.items() if v != "<omit>"}


async def create(client: httpx.AsyncClient, **overrides: str) -> dict[str, Any]:
    response = await client.post(TOKEN_URL, data=card_form(**overrides))
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_token_is_base64_like_and_cors_enabled(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN_URL, data=card_form())
    body = response.json()
    assert body["result"] == "Success" and body["message"] == ""
    assert re.fullmatch(r"[A-Za-z0-9+/]{36}", body["tkn"])
    assert response.headers["access-control-allow-origin"] == "*"


async def test_json_body_and_preflight(client: httpx.AsyncClient) -> None:
    response = await client.post(TOKEN_URL, json=card_form())
    assert response.json()["result"] == "Success"
    preflight = await client.options(TOKEN_URL)
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]


async def test_tokens_are_unique(client: httpx.AsyncClient) -> None:
    values = {(await create(client))["tkn"] for _ in range(20)}
    assert len(values) == 20


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aid": "12"}, "ER050"),
        ({"aid": "999999"}, "ER004"),
        ({"cn": "1234"}, "ER055"),
        ({"cn": "<omit>"}, "ER055"),
        ({"cn": "4444333322221112"}, "ER014"),
        ({"ed": "2913"}, "ER056"),
        ({"ed": "0101"}, "ER056"),
        ({"ed": "<omit>"}, "ER056"),
        ({"fn": "太郎"}, "ER057"),
        ({"fn": "MARY ANN"}, "ER057"),  # no space (seed 000 p.9: 半角英字)
        ({"ln": "O NEIL"}, "ER058"),
        ({"fn": "<omit>"}, "ER057"),
        ({"ln": "<omit>"}, "ER058"),
        ({"fn": "A" * 30, "ln": "B" * 15}, "ER058"),
        ({"md": "99"}, "ER064"),
        ({"md": "61"}, "ER065"),
        ({"md": "10", "pt": "3"}, "ER065"),
        ({"cvv": "12"}, "ER079"),
    ],
)
async def test_card_field_errors(
    client: httpx.AsyncClient, overrides: dict[str, str], code: str
) -> None:
    body = await create(client, **overrides)
    assert body["result"] == code
    assert body["message"] and "tkn" not in body


async def test_accepted_card_field_variants(client: httpx.AsyncClient) -> None:
    ok = [
        {"cn": "4444 3333 2222 1111"},
        {"md": "61", "pt": "12"},
        {"md": "80"},
        {"cvv": "<omit>"},
        {"fn": "MARY-ANN", "ln": "O.NEIL-SMITH"},
    ]
    for overrides in ok:
        assert (await create(client, **overrides))["result"] == "Success", overrides


async def authenticate(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.post(AUTH_URL, data=params)).json()
    return body


async def test_3ds_frictionless(client: httpx.AsyncClient) -> None:
    tkn = (await create(client))["tkn"]
    body = await authenticate(
        client, aid="100001", tkn=tkn, am="1000", tx="0", sf="0", em="a@example.com"
    )
    assert body == {"result": "Success", "message": "", "status": "frictionless", "challenge": None}


async def test_3ds_failure_card_still_answers_success(client: httpx.AsyncClient) -> None:
    tkn = (await create(client, cn=cards.CARD_3DS_FAIL))["tkn"]
    body = await authenticate(client, aid="100001", tkn=tkn, iid="ITEM001", pn="0312345678")
    assert body["result"] == "Success" and body["status"] == "failed"


async def test_3ds_challenge_complete_cancel_and_wrong_code(client: httpx.AsyncClient) -> None:
    statuses = []
    for action, code in (("complete", "1234"), ("cancel", ""), ("complete", "9999")):
        tkn = (await create(client, cn=cards.CARD_3DS_CHALLENGE))["tkn"]
        body = await authenticate(
            client, aid="100001", tkn=tkn, am="500", tx="50", sf="0", em="a@example.com"
        )
        assert body["status"] == "challenge"
        challenge = body["challenge"]
        assert challenge["code"] == cards.CHALLENGE_CODE and challenge["amount"] == 550
        done = (
            await client.post(
                CHALLENGE_URL, data={"cid": challenge["id"], "action": action, "code": code}
            )
        ).json()
        assert done["result"] == "Success"
        statuses.append(done["status"])
        again = (await client.post(CHALLENGE_URL, data={"cid": challenge["id"]})).json()
        assert again["result"] == "ER902"
    assert statuses == ["authenticated", "canceled", "failed"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"tkn": ""}, "ER583"),
        ({"tkn": "bm90LWEtdG9rZW4="}, "ER584"),
        ({"em": "", "pn": ""}, "ER059"),
        ({"em": "not-an-email"}, "ER059"),
        ({"pn": "03-1234-5678"}, "ER060"),
        ({"am": ""}, "ER061"),
        ({"tx": "x"}, "ER062"),
        ({"sf": "12345678"}, "ER063"),
        ({"iid": "NOPE"}, "ER066"),
        ({"aid": "100002"}, "ER004"),
    ],
)
async def test_3ds_parameter_errors(
    client: httpx.AsyncClient, params: dict[str, str], code: str
) -> None:
    tkn = (await create(client))["tkn"]
    base = {"aid": "100001", "tkn": tkn, "am": "1000", "tx": "0", "sf": "0", "em": "a@example.com"}
    body = await authenticate(client, **{**base, **params})
    assert body["result"] == code and body["message"]


async def test_make_token_helper(client: httpx.AsyncClient) -> None:
    plain = await make_token(client)
    assert len(plain) == 36
    three_ds = {"am": "1000", "tx": "0", "sf": "0", "em": "a@example.com"}
    challenged = await make_token(client, card=cards.CARD_3DS_CHALLENGE, three_ds=three_ds)
    assert challenged != plain
    with pytest.raises(SandboxTokenError) as err:
        await make_token(client, card="4444333322221112")
    assert err.value.code == "ER014"


async def test_maintenance_blocks_token_creation(client: httpx.AsyncClient) -> None:
    await client.post("_sandbox/maintenance", json={"on": True})
    assert (await create(client))["result"] == "ER999"
