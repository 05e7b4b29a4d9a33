"""The `_sandbox/` control API: ledger, reset, config, clock, faults, maintenance; mounting under
a prefix; internal failures answered as ER000; standalone configuration."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.sandbox import SandboxConfig, create_sandbox_app
from app.sandbox import __main__ as cli
from app.sandbox.config import config_from_env
from app.sandbox.state import SimState
from app.sandbox.testing import make_token, pay_by_token


@pytest.fixture
def app() -> FastAPI:
    return create_sandbox_app(SandboxConfig(hang_seconds=0.3))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://sim"
    ) as http:
        yield http


async def ledger(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (await client.get("_sandbox/ledger")).json()
    return rows


async def faults(client: httpx.AsyncClient, **values: Any) -> dict[str, Any]:
    response = await client.post("_sandbox/faults", json=values)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_ledger_fields_and_reset(client: httpx.AsyncClient) -> None:
    await pay_by_token(client, jb="AUTH", cod="c1", uid="member7")
    [row] = await ledger(client)
    for name in (
        "gid",
        "god",
        "jb",
        "status",
        "am",
        "tx",
        "sf",
        "ta",
        "cod",
        "uid",
        "num",
        "card_last4",
        "created_at",
        "updated_at",
        "reauth_of",
    ):
        assert name in row
    assert (row["gid"], row["god"], row["status"], row["uid"], row["num"]) == (
        10000001,
        20000001,
        "authorized",
        "member7",
        1,
    )
    assert (await client.post("_sandbox/reset")).json() == {"ok": True}
    assert await ledger(client) == []
    assert (await client.get("_sandbox/users")).json() == []
    await pay_by_token(client)
    # gids keep counting up through a reset (see the test below).
    assert (await ledger(client))[0]["gid"] == 10000002


async def test_reset_never_hands_out_a_gid_again(client: httpx.AsyncClient) -> None:
    """A merchant database outlives a reset: a gid it already holds must never come back
    (its gid column is unique), nor a god. Before the fix the counter restarted at
    gid_start: the first payment after a reset had the first payment's gid."""
    seen: list[tuple[int, int]] = []
    for _ in range(3):
        await pay_by_token(client)
        await pay_by_token(client)
        seen += [(r["gid"], r["god"]) for r in await ledger(client)]
        assert (await client.post("_sandbox/reset")).json() == {"ok": True}
    gids, gods = [g for g, _ in seen], [o for _, o in seen]
    assert len(set(gids)) == len(gids) == 6 and gids == sorted(gids)
    assert len(set(gods)) == len(gods) == 6 and gods == sorted(gods)


async def test_config_updates(client: httpx.AsyncClient) -> None:
    patch = {"aid": "123456", "slow_seconds": 0.1}
    body = (await client.post("_sandbox/config", json=patch)).json()
    assert body["aid"] == "123456" and body["slow_seconds"] == 0.1
    assert "kickback_transport" not in body
    assert (await client.get("_sandbox/config")).json()["aid"] == "123456"
    tkn = await make_token(client, three_ds={"am": "1", "tx": "0", "sf": "0", "em": "a@b.jp"})
    data = {
        "aid": "123456",
        "jb": "AUTH",
        "rt": "1",
        "tkn": tkn,
        "am": "1",
        "tx": "0",
        "sf": "0",
        "em": "a@b.jp",
    }
    assert (await client.post("gateway/gateway_token.aspx", data=data)).text.split(",")[1] == "1"
    for bad in ({"kickback_transport": None}, {"no_such_field": 1}, {"kickback_delay": -1}):
        assert (await client.post("_sandbox/config", json=bad)).status_code == 422


async def test_reset_restores_the_initial_config_but_keeps_the_transport(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    sim: SimState = app.state.sim
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="OK"))
    sim.config.kickback_transport = transport
    await client.post("_sandbox/config", json={"allowed_ips": ["203.0.113.7"], "aid": "222222"})
    await client.post("_sandbox/clock", json={"advance_seconds": 999})
    await client.post("_sandbox/maintenance", json={"on": True})
    await client.post("_sandbox/reset")
    config = (await client.get("_sandbox/config")).json()
    assert (config["allowed_ips"], config["aid"], config["hang_seconds"]) == ([], "100001", 0.3)
    assert sim.config.kickback_transport is transport
    assert (await client.get("_sandbox/clock")).json()["offset_seconds"] == 0
    assert (await client.get("_sandbox/maintenance")).json() == {"on": False}


async def test_clock(client: httpx.AsyncClient) -> None:
    before = (await client.get("_sandbox/clock")).json()
    after = (await client.post("_sandbox/clock", json={"advance_seconds": 3600})).json()
    assert after["offset_seconds"] == before["offset_seconds"] + 3600


async def test_http_500_fault_does_nothing(client: httpx.AsyncClient) -> None:
    await faults(client, http_500=1.0)
    response = await pay_by_token(client)
    assert response.status_code == 500
    assert await ledger(client) == []
    # Non-money endpoints are not affected.
    assert (
        await client.post("gateway/carduser.aspx", data={"aid": "100001", "cmd": "0", "uid": "u1"})
    ).text[0] == "1"


async def test_timeout_fault_charges_then_hangs(client: httpx.AsyncClient) -> None:
    await faults(client, timeout_after_charge=1.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pay_by_token(client), 0.15)
    assert [r["status"] for r in await ledger(client)] == ["captured"]


async def test_garbage_fault_charges_then_garbles(client: httpx.AsyncClient) -> None:
    await faults(client, garbage_after_charge=1.0)
    response = await pay_by_token(client)
    assert response.status_code == 200
    with pytest.raises(UnicodeDecodeError):
        response.content.decode("utf-8")
    assert len(await ledger(client)) == 1
    # SALES/CANCEL move money too: the capture happens, the answer is garbage.
    await faults(client)
    gid = (await pay_by_token(client, jb="AUTH")).text.split(",")[0]
    await faults(client, garbage_after_charge=1.0)
    ops = {"aid": "100001", "jb": "SALES", "rt": "1", "tid": gid}
    assert b"\xff" in (await client.post("gateway/gateway.aspx", data=ops)).content
    assert (await ledger(client))[-1]["status"] == "captured"


async def test_seeded_faults_are_reproducible(client: httpx.AsyncClient) -> None:
    async def outcomes() -> list[int]:
        await faults(client, http_500=0.5, seed=7)
        ops = {"aid": "100001", "jb": "SALES", "rt": "1", "tid": "1"}
        return [
            (await client.post("gateway/gateway.aspx", data=ops)).status_code for _ in range(12)
        ]

    first, second = await outcomes(), await outcomes()
    assert first == second and {200, 500} == set(first)
    assert (await client.get("_sandbox/faults")).json()["seed"] == 7


async def test_fault_validation(client: httpx.AsyncClient) -> None:
    assert (await client.post("_sandbox/faults", json={"http_500": 1.5})).status_code == 422
    assert (await client.post("_sandbox/faults", json={"bogus": 1})).status_code == 422


async def test_maintenance_everywhere(client: httpx.AsyncClient) -> None:
    tkn = await make_token(client, three_ds={"am": "1", "tx": "0", "sf": "0", "em": "a@b.jp"})
    assert (await client.post("_sandbox/maintenance", json={"on": True})).json() == {"on": True}
    pay = {
        "aid": "100001",
        "jb": "AUTH",
        "rt": "1",
        "tkn": tkn,
        "am": "1",
        "tx": "0",
        "sf": "0",
        "em": "a@b.jp",
    }
    url = "gateway/gateway_token.aspx"
    assert (await client.post(url, data=pay)).text == "0,2,,ER999,,,0,0,0,0,,,"
    assert (await client.post(url, data={**pay, "rt": "0"})).text == "ER999"
    user = {"aid": "100001", "cmd": "3", "uid": "u1"}
    assert (await client.post("gateway/carduser.aspx", data=user)).text == "2,ER999,u1,,,"
    await client.post("_sandbox/maintenance", json={"on": False})
    assert (await client.post(url, data=pay)).text.split(",")[1] == "1"


async def test_internal_errors_keep_each_format(
    app: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim: SimState = app.state.sim

    def boom() -> str:
        raise RuntimeError("boom")

    await pay_by_token(client)
    monkeypatch.setattr(sim, "new_key", boom)
    user = {"aid": "100001", "cmd": "0", "uid": "u1"}
    assert (await client.post("gateway/carduser.aspx", data=user)).text == "2,ER000,u1,"
    monkeypatch.setattr(sim, "new_token_value", boom)
    form = {
        "aid": "100001",
        "cn": "4444333322221111",
        "ed": "3012",
        "fn": "A",
        "ln": "B",
        "md": "10",
    }
    answer = (await client.post("gateway/token/create.aspx", data=form)).json()
    assert answer["result"] == "ER000" and answer["message"]
    monkeypatch.setattr(sim.clock, "now", boom)
    response = await client.post(
        "api/v1.0/charges/search/order",
        json={},
        headers={"X-Payment-API-Key": "sandbox-search-key"},
    )
    assert response.status_code == 500 and response.json()["err"]["ec"] == "ER500"


async def test_mounted_under_a_prefix() -> None:
    host = FastAPI()
    sandbox = create_sandbox_app()
    host.mount("/sandbox", sandbox)
    transport = httpx.ASGITransport(app=host)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop/sandbox/") as http:
        index = (await http.get("_sandbox/")).json()
        assert index["endpoints"]["gateway_token"] == "/sandbox/gateway/gateway_token.aspx"
        assert index["endpoints"]["token_js"] == "/sandbox/gateway/js/CPToken.js"
        script = await http.get("gateway/js/EMV3DSAdapter.js")
        assert script.headers["content-type"].startswith("application/javascript")
        assert (await pay_by_token(http)).text.split(",")[1] == "1"
    assert len(sandbox.state.sim.ledger) == 1


def test_config_from_env() -> None:
    config = config_from_env(
        {
            "SANDBOX_AID": "654321",
            "SANDBOX_ALLOWED_IPS": "10.0.0.1, 10.0.0.2,",
            "SANDBOX_KICKBACK_URL": "http://shop/kickback",
            "SANDBOX_SEARCH_API_KEY": "k",
            "SANDBOX_REQUIRE_3DS": "false",
        }
    )
    assert (config.aid, config.allowed_ips, config.kickback_url, config.search_api_key) == (
        "654321",
        ["10.0.0.1", "10.0.0.2"],
        "http://shop/kickback",
        "k",
    )
    assert config.require_3ds is False
    from_env = config_from_env({})
    assert 10**11 <= from_env.gid_start < 10**12, "restarts continue above earlier gids"
    assert dataclasses.replace(from_env, gid_start=SandboxConfig().gid_start) == SandboxConfig()


def test_cli_runs_uvicorn(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(app: FastAPI, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setenv("SANDBOX_AID", "222222")
    cli.main(["--port", "9999"])
    [call] = calls
    assert (call["host"], call["port"]) == ("127.0.0.1", 9999)
    assert call["app"].state.sim.config.aid == "222222"


def test_openapi_is_clean() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = create_sandbox_app().openapi()["paths"]
    assert "post" in paths["/gateway/gateway_token.aspx"]
    assert "/api/v1.0/charges/search/order" in paths


async def test_vendor_scripts_can_be_served_altered_or_failing_until_reset(
    client: httpx.AsyncClient,
) -> None:
    original = (await client.get("/gateway/js/CPToken.js")).content
    assert b"CPToken" in original
    r = await client.post("_sandbox/scripts/CPToken.js", json={"append": "/* x */"})
    assert r.status_code == 200 and r.json()["altered"] is True
    assert (await client.get("/gateway/js/CPToken.js")).content == original + b"/* x */"
    other = (await client.get("/gateway/js/EMV3DSAdapter.js")).content
    await client.post("_sandbox/scripts/EMV3DSAdapter.js", json={"status": 503})
    assert (await client.get("/gateway/js/EMV3DSAdapter.js")).status_code == 503
    assert (await client.post("_sandbox/scripts/other.js", json={})).status_code == 422
    assert (
        await client.post("_sandbox/scripts/CPToken.js", json={"status": 200})
    ).status_code == 422
    assert (await client.delete("_sandbox/scripts/CPToken.js")).json()["altered"] is False
    assert (await client.get("/gateway/js/CPToken.js")).content == original
    await client.post("_sandbox/reset")
    assert (await client.get("/gateway/js/EMV3DSAdapter.js")).content == other
