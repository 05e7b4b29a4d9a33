"""Helpers for tests that drive the SBPS simulator over HTTP the way a browser does:
`make_token` does what com_sbps_system_token.js does, `make_tds_info_token` what
com_sbps_system_tds2infotoken.js does (both POST to the simulator's token endpoints)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app.sandbox.clock import JST
from app.sandbox.sbps.browser import TDS2_PATH, TOKEN_PATH
from app.sandbox.sbps.cards import CARD_OK


class SbpsTokenError(RuntimeError):
    """The simulator refused to make a token (its 5-character error code)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class TokenPair:
    token: str
    token_key: str
    answer: dict[str, Any]  # the whole tokenResponse


def future_expiration(years: int = 3) -> str:
    """A YYYYMM some years ahead (December), valid for any simulator clock used in tests."""
    return f"{datetime.now(JST).year + years}12"


async def _ids(http: httpx.AsyncClient) -> tuple[str, str]:
    response = await http.get("_sandbox/config")
    response.raise_for_status()
    body = response.json()
    return str(body["merchant_id"]), str(body["service_id"])


async def _post(http: httpx.AsyncClient, path: str, form: dict[str, str]) -> TokenPair:
    response = await http.post(path.lstrip("/"), data=form)
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    if body.get("result") != "OK":
        raise SbpsTokenError(str(body.get("errorCode")))
    answer: dict[str, Any] = body["tokenResponse"]
    return TokenPair(str(answer["token"]), str(answer["tokenKey"]), answer)


async def make_token(
    http: httpx.AsyncClient,
    *,
    card: str = CARD_OK,
    expiration: str | None = None,
    security_code: str = "123",
) -> TokenPair:
    """A card token; `http.base_url` is the simulator's root."""
    merchant_id, service_id = await _ids(http)
    form = {
        "merchantId": merchant_id,
        "serviceId": service_id,
        "ccNumber": card,
        "ccExpiration": expiration or future_expiration(),
        "securityCode": security_code,
    }
    return await _post(http, TOKEN_PATH, form)


async def make_tds_info_token(
    http: httpx.AsyncClient, *, email: str = "taro@example.com", mobile_phone: str = ""
) -> TokenPair:
    """A 3-D Secure info token for TA02-00101-101."""
    merchant_id, service_id = await _ids(http)
    form = {"merchantId": merchant_id, "serviceId": service_id, "email": email}
    if mobile_phone:
        form["mobilePhone"] = mobile_phone
    return await _post(http, TDS2_PATH, form)
