"""Masking for the audit log: no token, card number, CVV or user key is stored in clear."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

# 13-19 digits, optionally grouped by single spaces or hyphens, as card numbers are written.
_PAN_LIKE = re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")
_STARS = "*" * 12


def mask_token(token: str) -> str:
    """Length plus a short hash prefix: enough to correlate two log lines, not to reuse."""
    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()[:8]
    return f"tkn(len={len(token)},sha256={digest})"


def mask_card_number(number: str) -> str:
    digits = re.sub(r"[^0-9]", "", number)
    return _STARS + digits[-4:] if len(digits) >= 12 else "***"


def mask_key(key: str) -> str:
    return key[:2] + "***"


def mask_text(text: str) -> str:
    """Scrubs PAN-like digit runs from free text, keeping the last four digits."""

    def _mask(match: re.Match[str]) -> str:
        return mask_card_number(match.group(0))

    return _PAN_LIKE.sub(_mask, text)


def mask_key_field(text: str, index: int) -> str:
    """A comma-separated answer with the user key at position `index` masked, and card
    numbers scrubbed: the key authorizes stored-card charges, so it stays out of the logs."""
    fields = text.split(",")
    if index < len(fields) and fields[index].strip():
        fields[index] = mask_key(fields[index].strip())
    return mask_text(",".join(fields))


def mask_header_value(value: str) -> str:
    """An API key as `abcd***(len=32)`: recognizable by its owner, useless to anyone else."""
    return f"{value[:4] if len(value) >= 16 else ''}***(len={len(value)})"


def mask_params(params: Mapping[str, str]) -> dict[str, str]:
    """The request as it may be logged. Other values pass through `mask_text`, so a card
    number slipped into a free parameter is still scrubbed."""
    masked: dict[str, str] = {}
    for name, value in params.items():
        match name.lower():
            case "tkn":
                masked[name] = mask_token(value)
            case "cn":
                masked[name] = mask_card_number(value)
            case "cvv":
                masked[name] = "***"
            case "key":
                masked[name] = mask_key(value)
            case "hak":
                # Derived from the connection-auth code: replayable within the gateway's
                # tolerance, so never kept.
                masked[name] = "***"
            case _:
                masked[name] = mask_text(value)
    return masked
