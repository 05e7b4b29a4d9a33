"""Field types with the gateway's limits (seed limits), shared by every package's requests.

Validation stays in the functions (their messages are what clients see); the same rule is
written into the OpenAPI document through `_documented`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict

from app.carddata import NoCardData

_UID = re.compile(r"[A-Za-z0-9]{1,50}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
_ITEM = re.compile(r"[A-Za-z0-9_-]{1,50}")
CARD_FIELDS = ("cn", "cvv", "ed", "ed_year", "ed_month", "card_number", "security_code")


def _order_id(v: str) -> str:
    if len(v.encode()) > 50:
        raise ValueError("must be at most 50 bytes (UTF-8), as the gateway's cod")
    if any(c in v for c in ",&=\r\n\t") or not v.isprintable():
        raise ValueError("must not contain commas, '&', '=' or control characters")
    return v


def _uid(v: str) -> str:
    if not _UID.fullmatch(v):
        raise ValueError("must be 1-50 letters or digits (the gateway's uid)")
    return v


def _email(v: str) -> str:
    if len(v) > 100 or not _EMAIL.fullmatch(v):
        raise ValueError("must be a valid e-mail address of at most 100 characters")
    return v


def _phone(v: str) -> str:
    if not re.fullmatch(r"\d{1,20}", v):
        raise ValueError("must be 1-20 digits, no hyphens")
    return v


def _item_code(v: str) -> str:
    if not _ITEM.fullmatch(v):
        raise ValueError("must be 1-50 letters, digits, '-' or '_'")
    return v


def _url(v: str) -> str:
    if len(v) > 2048 or not re.fullmatch(r"https?://[^\s]+", v):
        raise ValueError("must be an http(s) URL of at most 2048 characters")
    return v


def _documented(**schema: Any) -> Any:
    """The validator's rule in the OpenAPI document too (validation stays the function's, so
    its error message is the one clients see)."""
    return Field(json_schema_extra=schema)


# Rules of the model validators below, for the OpenAPI document.
EMAIL_OR_PHONE: dict[str, Any] = {"anyOf": [{"required": ["email"]}, {"required": ["phone"]}]}
OrderId = Annotated[
    str,
    NoCardData,
    AfterValidator(_order_id),
    _documented(maxLength=50, pattern=r"^[^,&=\x00-\x1f\x7f]*$"),
]
Uid = Annotated[str, NoCardData, AfterValidator(_uid), _documented(pattern=r"^[A-Za-z0-9]{1,50}$")]
Email = Annotated[
    str,
    NoCardData,
    AfterValidator(_email),
    _documented(maxLength=100, pattern=f"^{_EMAIL.pattern}$"),
]
Phone = Annotated[str, NoCardData, AfterValidator(_phone), _documented(pattern=r"^[0-9]{1,20}$")]
ItemCode = Annotated[
    str, NoCardData, AfterValidator(_item_code), _documented(pattern=f"^{_ITEM.pattern}$")
]
Url = Annotated[
    str,
    NoCardData,
    AfterValidator(_url),
    _documented(maxLength=2048, pattern=r"^https?://[^\s]+$"),
]
# Money is integer yen, strictly: `true`, `1.0` and `"1000"` are a 422, never coerced.
Yen = Annotated[int, Strict()]


def card_fields_in(form: dict[str, str]) -> list[str]:
    """Names of card-data fields present with a value in a posted form."""
    return [k for k in CARD_FIELDS if form.get(k)]
