"""What of an SBPS exchange may be recorded: masking by element name.

The shared rule (app/gateway/masking.mask_text) scrubs every 13-19 digit run as a card
number, which would also scrub SBPS's own 14-digit ids and timestamps (tracking_id,
request_date, res_date...) and leave an audit trail nobody can match to the ledger. So an
SBPS document is masked element by element: the few elements that hold SBPS ids or dates
stay readable when their value has exactly that shape (a 14-digit date must be a real date),
secrets (token, token_key, the stored-card key, the hash) are replaced, and every other
value, as well as anything outside an element (a proxy's error page), still goes through
`mask_text`. No card number is ever kept: SBPS returns cc_number masked, and a clear one
would be masked here like any other digit run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from app.gateway.masking import mask_key, mask_text, mask_token
from app.gateway.sbps.elements import Block, Element

# SBPS timestamps: YYYYMMDDHHMMSS (JST).
_DATES = frozenset({"request_date", "res_date", "res_process_date", "processing_datetime"})
# 14-digit SBPS ids (the notes: res_tracking_id is 14 digits).
_TRACKING = frozenset({"tracking_id", "res_tracking_id"})
# 32 characters, letters and digits (the notes: B30132002ST0100131101...).
_TRANSACTION = frozenset({"sps_transaction_id", "res_sps_transaction_id"})
_TOKENS = frozenset({"token", "token_key", "tds_info_token", "tds_info_token_key"})
_KEYS = frozenset({"res_payinfo_key"})
_HIDDEN = frozenset({"sps_hashcode"})

_FOURTEEN = re.compile(r"[0-9]{14}")
_TRANSACTION_ID = re.compile(r"[0-9A-Za-z]{1,32}")
# A leaf as SBPS writes it: `<name>value</name>` (no attributes, no nesting).
_LEAF = re.compile(r"<([a-z][a-z0-9_]*)>([^<]*)</\1>")


def _is_date(value: str) -> bool:
    if not _FOURTEEN.fullmatch(value):
        return False
    try:
        datetime.strptime(value, "%Y%m%d%H%M%S")
    except ValueError:
        return False
    return True


def mask_value(name: str, value: str) -> str:
    """One element's value as it may be recorded."""
    if name in _TOKENS:
        return mask_token(value) if value else value
    if name in _KEYS:
        return mask_key(value) if value else value
    if name in _HIDDEN:
        return "***" if value else value
    if name in _DATES and _is_date(value):
        return value
    if name in _TRACKING and _FOURTEEN.fullmatch(value):
        return value
    if name in _TRANSACTION and _TRANSACTION_ID.fullmatch(value):
        return value
    return mask_text(value)


def mask_document(text: str) -> str:
    """An SBPS XML document (request or answer) as it may be recorded; text that is no
    leaf at all (a garbled answer) is scrubbed by the shared rule."""
    out: list[str] = []
    position = 0
    for match in _LEAF.finditer(text):
        out.append(mask_text(text[position : match.start()]))
        name, value = match.group(1), match.group(2)
        out.append(f"<{name}>{mask_value(name, value)}</{name}>")
        position = match.end()
    out.append(mask_text(text[position:]))
    return "".join(out)


def mask_elements(elements: Iterable[Element], prefix: str = "") -> dict[str, str]:
    """A request's elements as the flat mapping the audit stores (`block/name` paths)."""
    masked: dict[str, str] = {}
    for element in elements:
        if isinstance(element, Block):
            masked |= mask_elements(element.children, f"{prefix}{element.name}/")
        else:
            masked[prefix + element.name] = mask_value(element.name, element.value)
    return masked
