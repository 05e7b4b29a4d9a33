"""Helpers for tests that drive the simulator over HTTP, the way a browser and the gateway do.

`make_token` does what CPToken.js + EMV3DSAdapter.js do in the shopper's browser. `KickbackSink`
is an ASGI app that records kickbacks, for `SandboxConfig(kickback_transport=...)`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx

from app.sandbox.cards import CARD_OK, CHALLENGE_CODE
from app.sandbox.clock import JST

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class SandboxTokenError(RuntimeError):
    """The simulator refused to create or authenticate a token."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def future_expiry(years: int = 3) -> str:
    """A YYMM some years ahead (December), valid for any simulator clock used in tests."""
    return f"{(datetime.now(JST).year + years) % 100:02d}12"


async def _aid(http: httpx.AsyncClient) -> str:
    response = await http.get("_sandbox/config")
    response.raise_for_status()
    return str(response.json()["aid"])


def _check(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    if body.get("result") != "Success":
        raise SandboxTokenError(str(body.get("result")), str(body.get("message", "")))
    return body


async def make_token(
    http: httpx.AsyncClient,
    *,
    card: str = CARD_OK,
    ed: str | None = None,
    fn: str = "TARO",
    ln: str = "YAMADA",
    cvv: str = "123",
    three_ds: dict[str, str] | None = None,
    aid: str | None = None,
    challenge: Literal["complete", "cancel"] = "complete",
    md: str = "10",
    pt: str = "",
) -> str:
    """Create a token (and, with `three_ds`, authenticate it; a challenge is completed with the
    sandbox code unless `challenge="cancel"`). `http.base_url` is the simulator root; `aid`
    defaults to `three_ds["aid"]` or the simulator's configured shop id."""
    if aid is None:
        aid = (three_ds or {}).get("aid") or await _aid(http)
    form = {"aid": aid, "cn": card, "ed": ed or future_expiry(), "fn": fn, "ln": ln, "cvv": cvv}
    form.update({"md": md, "pt": pt} if pt else {"md": md})
    token = str(_check(await http.post("gateway/token/create.aspx", data=form))["tkn"])
    if three_ds is None:
        return token
    params = {"aid": aid, **three_ds, "tkn": token}
    answer = _check(await http.post("gateway/3ds/authenticate.aspx", data=params))
    if answer.get("status") == "challenge":
        finish = {"cid": answer["challenge"]["id"], "action": challenge, "code": CHALLENGE_CODE}
        _check(await http.post("gateway/3ds/challenge.aspx", data=finish))
    return token


async def pay_by_token(
    http: httpx.AsyncClient,
    *,
    jb: str = "CAPTURE",
    am: int = 1000,
    tx: int = 0,
    sf: int = 0,
    em: str = "taro@example.com",
    pn: str = "",
    card: str = CARD_OK,
    rt: str = "1",
    cod: str = "",
    uid: str = "",
    extra: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A complete browser + server round: token, matching 3-D Secure, `gateway_token.aspx`."""
    aid = await _aid(http)
    contact = {k: v for k, v in (("em", em), ("pn", pn)) if v}
    amounts = {"am": str(am), "tx": str(tx), "sf": str(sf)}
    token = await make_token(http, card=card, aid=aid, three_ds={**amounts, **contact})
    form = {"aid": aid, "jb": jb, "rt": rt, "tkn": token, **amounts, **contact}
    form.update({k: v for k, v in (("cod", cod), ("uid", uid)) if v})
    return await http.post("gateway/gateway_token.aspx", data={**form, **(extra or {})})


@dataclass
class RecordedKickback:
    method: str
    path: str
    params: dict[str, str]
    raw_query: bytes


@dataclass
class KickbackSink:
    """ASGI app answering 200 `OK` (or `status_code` and `body`) and remembering every request
    it received."""

    received: list[RecordedKickback] = field(default_factory=list)
    status_code: int = 200
    body: bytes = b"OK"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = bytes(scope.get("query_string", b""))
        self.received.append(
            RecordedKickback(
                method=scope["method"],
                path=scope["path"],
                params=dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)),
                raw_query=raw,
            )
        )
        await send(
            {
                "type": "http.response.start",
                "status": self.status_code,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": self.body})

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.ASGITransport(app=self)
