"""The signature header of a delivery: `RP-Signature: t=<unix seconds>,v1=<hex>` where v1 is
HMAC-SHA256(secret, f"{t}.{body}"), one v1 per secret that signs (two while a rolled secret
overlaps). The receiver recomputes v1 over the raw body and checks that t is recent."""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "RP-Signature"
EVENT_ID_HEADER = "RP-Event-Id"
# What a receiver should accept between t and its own clock (the README's example uses it).
TOLERANCE_SECONDS = 300


def v1(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header(secrets: list[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={v1(s, timestamp, body)}" for s in secrets)])


def verify(secret: str, signature: str, body: bytes, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """A receiver's check (the README shows the same in a dozen lines): one of the v1 values
    is the MAC of these exact bytes, and t is within `tolerance` seconds of now."""
    fields = [f.split("=", 1) for f in signature.split(",") if "=" in f]
    t = next((v for k, v in fields if k == "t"), "")
    if not t.isdigit() or abs(time.time() - int(t)) > tolerance:
        return False
    mac = v1(secret, int(t), body)
    return any(k == "v1" and hmac.compare_digest(mac, v) for k, v in fields)
