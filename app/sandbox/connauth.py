"""接続認証 (connection authentication), checked when `connection_auth_code` is set: `ut` is
Unix seconds and `hak` the SHA-256 hex of ut followed by the code (research:
page-security-and-peers-notes.md, "ROBOT PAYMENT: connection authentication"). The error code
is not published; we answer ER001 (リクエストエラー, seed 000 p.26): see docs/gateway.md."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from app.sandbox.codes import GatewayError
from app.sandbox.config import SandboxConfig
from app.sandbox.wire import Params

FIELDS = ("ut", "hak")
ERROR = "ER001"


def expected_hak(ut: str, code: str) -> str:
    return hashlib.sha256((ut + code).encode("utf-8")).hexdigest()


def check(p: Params, config: SandboxConfig, now: datetime) -> None:
    code = config.connection_auth_code
    if not code:
        return
    ut, hak = p.get("ut"), p.get("hak")
    if not (ut.isascii() and ut.isdigit()) or not hak:
        raise GatewayError(ERROR)
    # A captured request is good only within the tolerance of our clock (a replay window).
    if abs(int(ut) - now.timestamp()) > config.connection_auth_tolerance_seconds:
        raise GatewayError(ERROR)
    # Lowercase hex only, as the client sends it: no source allows another spelling.
    if not hmac.compare_digest(hak.encode("ascii", "replace"), expected_hak(ut, code).encode()):
        raise GatewayError(ERROR)
