"""Which kickbacks are trusted. The gateway signs nothing, so trust rests on what an attacker
cannot claim: the secret path (`/kickback/<KICKBACK_SECRET>`, known only to the gateway's
決済結果通知URL setting) and, when `KICKBACK_ALLOWED_IPS` is set, the TCP peer the server vouches
for (`request.client.host`). Everything else is untrusted: kept, and verified through the
charges search before it changes anything (docs/gateway.md)."""

from __future__ import annotations

import hashlib
import hmac

from app.config import Settings


def secret_matches(settings: Settings, given: str | None) -> bool:
    """Constant-time comparison (of digests, so not even the length leaks)."""
    if given is None:
        return False
    want = hashlib.sha256(settings.kickback_secret.get_secret_value().encode()).digest()
    got = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
    return hmac.compare_digest(want, got)


def allowed_peer(settings: Settings, peer: str | None) -> bool:
    """The peer is on `KICKBACK_ALLOWED_IPS` (which must be set)."""
    allowed = settings.kickback_allowed_ip_list
    return bool(allowed) and peer in allowed


def is_trusted(settings: Settings, given_secret: str | None, peer: str | None) -> bool:
    """The right secret, and the allowlist empty or the peer on it."""
    if not secret_matches(settings, given_secret):
        return False
    return not settings.kickback_allowed_ip_list or allowed_peer(settings, peer)


def secret_path(settings: Settings) -> str:
    """The trusted kickback path, to register as 決済結果通知URL (a secret: never log it)."""
    return f"/kickback/{settings.kickback_secret.get_secret_value()}"
