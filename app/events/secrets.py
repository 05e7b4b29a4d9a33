"""Webhook signing secrets: made here, shown once, kept encrypted (Fernet, keyed from
WEBHOOK_SECRET_KEY) because signing needs the secret itself, not a digest of it."""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


class SecretBox:
    """Encrypts with the first of WEBHOOK_SECRET_KEY's comma-separated keys and decrypts
    with any (so the key can be rotated: put the new one first, `python -m app events
    rewrap`, then drop the old)."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("WEBHOOK_SECRET_KEY is empty")
        # Any passphrase becomes a Fernet key through SHA-256 (the setting is free text).
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(hashlib.sha256(k.encode()).digest())) for k in parts]
        )

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise ValueError(
                "a webhook secret cannot be decrypted with WEBHOOK_SECRET_KEY "
                "(was the key changed without keeping the old one after it?)"
            ) from None

    def rewrap(self, sealed: str) -> str:
        return self._fernet.rotate(sealed.encode()).decode()
