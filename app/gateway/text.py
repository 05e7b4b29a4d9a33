"""Reading gateway answers as text, shared by every ROBOT PAYMENT product client."""

from __future__ import annotations


class CodecError(ValueError):
    """A gateway answer that cannot be read with confidence."""


def decode_bytes(raw: bytes) -> str:
    """UTF-8 as documented, CP932 (Shift_JIS) as older gateway output used; never raises."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp932", errors="replace")
