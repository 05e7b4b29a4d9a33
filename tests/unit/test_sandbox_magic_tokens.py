"""Magic tokens (`tok_approved`, ...): a magic card after its 3-D Secure, for curl. Accepted by
the simulator (standalone and mounted in sandbox mode, one code path), any number of times and
with any amounts; a live app has no simulator, so nothing there knows them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.sandbox import SandboxConfig, cards, create_sandbox_app

PAY = "gateway/gateway_token.aspx"
EM = "taro@example.com"


@pytest.fixture
async def sim() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sandbox_app(SandboxConfig(slow_seconds=0.1, hang_seconds=0.1))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


async def pay(sim: httpx.AsyncClient, token: str, amount: str = "1000") -> list[str]:
    form = {"aid": "100001", "jb": "AUTH", "rt": "1", "tkn": token, "am": amount, "tx": "0"}
    response = await sim.post(PAY, data={**form, "sf": "0", "em": EM})
    assert response.status_code == 200
    return response.text.split(",")


def test_every_magic_card_has_its_own_magic_token() -> None:
    tokens = [c.token for c in cards.MAGIC_CARDS.values()]
    assert all(re.fullmatch(r"tok_[a-z0-9_]+", t) for t in tokens)
    assert len(set(tokens)) == len(tokens) == len(cards.MAGIC_CARDS)
    assert {row["token"] for row in cards.describe()} == set(tokens)


async def test_magic_token_pays_again_and_again_with_any_amount(sim: httpx.AsyncClient) -> None:
    first = await pay(sim, "tok_approved", "1000")
    again = await pay(sim, "tok_approved", "2500")  # no 3-D Secure binding to repeat
    assert first[1] == again[1] == "1" and first[0] != again[0]
    ledger = (await sim.get("_sandbox/ledger")).json()
    assert [t["am"] for t in ledger] == [1000, 2500]


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_declined_g12", "G12"),
        ("tok_declined_g55", "G55"),
        ("tok_declined_g83", "G83"),
        ("tok_3ds_failed", "ER900"),
    ],
)
async def test_magic_token_outcomes(sim: httpx.AsyncClient, token: str, code: str) -> None:
    answer = await pay(sim, token)
    assert answer[1] == "2" and answer[3] == code


async def test_magic_token_challenge_is_a_passed_challenge(sim: httpx.AsyncClient) -> None:
    assert (await pay(sim, "tok_3ds_challenge"))[1] == "1"
    auth = await sim.post(
        "gateway/3ds/authenticate.aspx",
        data={"aid": "100001", "tkn": "tok_3ds_failed", "am": "1", "tx": "0", "sf": "0", "em": EM},
    )
    assert auth.json()["status"] == "failed"  # its 3-D Secure already ran: no challenge


async def test_magic_token_registers_a_card(sim: httpx.AsyncClient) -> None:
    user = await sim.post("gateway/carduser.aspx", data={"aid": "100001", "cmd": "0", "uid": "u1"})
    key = user.text.split(",")[3]
    card = await sim.post(
        "gateway/carduser_token.aspx",
        data={"aid": "100001", "cmd": "4", "uid": "u1", "key": key, "tkn": "tok_approved"},
    )
    assert card.text.split(",")[:2] == ["1", ""] and card.text.split(",")[4] == "1"


async def test_an_unknown_tok_value_is_no_magic_token(sim: httpx.AsyncClient) -> None:
    assert (await pay(sim, "tok_visa"))[3] == "ER584"


async def test_magic_token_unknown_to_a_live_app() -> None:
    """Live mode mounts no simulator: no route takes a magic token; pays go to the real gateway."""
    settings = Settings(
        _env_file=None,
        gateway_mode="live",
        gateway_aid="123456",
        api_keys="a-long-secret-value:merchant",
        gateway_base_url="https://credit.j-payment.co.jp",
        search_api_base_url="https://api.j-payment.co.jp",
        search_api_key="real-key",
        kickback_secret="k" * 32,
        webhook_secret_key="w" * 32,
    )
    app = create_app(settings)
    assert not [r for r in app.routes if getattr(r, "path", "").startswith("/sandbox")]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://app"
    ) as http:
        for path in ("/sandbox/", f"/sandbox/{PAY}", "/sandbox/_sandbox/ledger"):
            assert (await http.post(path, data={"tkn": "tok_approved"})).status_code == 404


def test_demo_outcomes_name_no_settings() -> None:
    """The demo's card table is for shoppers: no internal setting names (slow_seconds, ...)."""
    for row in cards.describe():
        for text in (row["outcome"], row["outcome_ja"], row["token_outcome"]):
            assert not re.search(r"[a-z]+_[a-z]+", text), text
