"""The page check's own card page (PCI DSS 11.6.1): `/checkout/cs_pagesec_probe?probe=<token>`
renders the real checkout card page (the same template, inventory, CSP and headers) for an
order that exists nowhere, so the check sees exactly what a shopper's browser gets without
creating a session, writing a row or telling the shop anything. Nothing can be paid on it:
its form posts to a session that does not exist (404).

The token is an HMAC of its time with a key derived from WEBHOOK_SECRET_KEY, good for
`VALID` either side of now: without one the path is the 404 page every unknown session gets,
so nobody else can make us show a card form for an order we never had."""

from __future__ import annotations

import hashlib
import hmac
import time

from app.config import Settings

SESSION_ID = "cs_pagesec_probe"
VALID = 300  # seconds
_LABEL = b"rp-pagesec-probe\0"


def _key(settings: Settings) -> bytes:
    return hashlib.sha256(_LABEL + settings.webhook_secret_key.get_secret_value().encode()).digest()


def _mac(settings: Settings, stamp: str) -> str:
    return hmac.new(_key(settings), stamp.encode(), hashlib.sha256).hexdigest()


def token(settings: Settings, now: float | None = None) -> str:
    stamp = str(int(now if now is not None else time.time()))
    return f"{stamp}.{_mac(settings, stamp)}"


def valid(settings: Settings, value: str | None, now: float | None = None) -> bool:
    if not value or len(value) > 100:
        return False
    stamp, _, mac = value.partition(".")
    if not stamp.isdigit() or len(stamp) > 12:
        return False
    if abs((now if now is not None else time.time()) - int(stamp)) > VALID:
        return False
    return hmac.compare_digest(mac, _mac(settings, stamp))


def path(settings: Settings, lang: str = "ja") -> str:
    """The probe page's path with a fresh token."""
    return f"/checkout/{SESSION_ID}?lang={lang}&probe={token(settings)}"
