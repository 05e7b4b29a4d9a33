"""Field types with the gateway's limits (seed limits), shared by every package's requests.

Validation stays in the functions (their messages are what clients see); the same rule is
written into the OpenAPI document through `_documented`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import AfterValidator, Field, Strict, ValidationInfo

from app.carddata import NoCardData, refuse_card_data
from app.gateway.base import PAYMENT_REF

_UID = re.compile(r"[A-Za-z0-9]{1,50}")
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
# iid: 半角英数(50) (seed 000 p.18).
_ITEM = re.compile(r"[A-Za-z0-9]{1,50}")
CARD_FIELDS = ("cn", "cvv", "ed", "ed_year", "ed_month", "card_number", "security_code")


# cod (店舗オーダー番号): 半角英数または日本語, 50 bytes (seed 000 pp.12-18). "Japanese" is read as
# the Japanese scripts in full width (hiragana, katakana with ー, kanji, 々, full-width letters
# and digits) that Shift_JIS can carry; no spaces, no symbols, no half-width katakana. Bytes
# are counted in UTF-8, the wire's encoding: a Japanese character is 3 bytes there and 2 in
# Shift_JIS, so what fits here fits whichever the gateway counts in. docs/gateway.md "cod".
COD_BYTES = 50
_JAPANESE_RANGES = (
    (0x3005, 0x3007),  # 々 〆 〇
    (0x3041, 0x3096),  # hiragana
    (0x309D, 0x309E),  # ゝ ゞ
    (0x30A1, 0x30FA),  # katakana
    (0x30FC, 0x30FE),  # ー ヽ ヾ
    (0x4E00, 0x9FFF),  # kanji
    (0xFF10, 0xFF19),  # full-width digits
    (0xFF21, 0xFF3A),  # full-width capitals
    (0xFF41, 0xFF5A),  # full-width small letters
)
_COD_PATTERN = (
    "^[A-Za-z0-9" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in _JAPANESE_RANGES) + "]+$"
)
COD_CHARACTERS = "letters, digits or Japanese characters (半角英数または日本語)"


def _cod_char(ch: str) -> bool:
    if ch.isascii():
        return ch.isalnum()
    code = ord(ch)
    if not any(lo <= code <= hi for lo, hi in _JAPANESE_RANGES):
        return False
    try:
        ch.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


def cod_problem(value: str) -> str | None:
    """Why `value` cannot be sent as the gateway's cod, or None when it can."""
    if not value:
        return "must not be empty"
    bad = sorted({ch for ch in value if not _cod_char(ch)})
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        return f"must be {COD_CHARACTERS} only, as the gateway's cod; not allowed: {shown}"
    size = len(value.encode("utf-8"))
    if size > COD_BYTES:
        return f"must be at most {COD_BYTES} bytes in UTF-8 (a Japanese character is 3), not {size}"
    return None


def _order_id(v: str) -> str:
    problem = cod_problem(v)
    if problem:
        raise ValueError(problem)
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
        raise ValueError("must be 1-50 letters or digits (the gateway's iid)")
    return v


def product_job_problem(job: str, item_code: str | None) -> str | None:
    """The one rule for a product-registered payment's job: it is sent without jb (seed 000
    pp.13, 18 list none), so its registration at the gateway decides, and we record a sale
    (CAPTURE); asking for AUTH is asking for what the gateway cannot be told."""
    if item_code and job != "CAPTURE":
        return (
            "a product-registered payment (item_code) cannot be job AUTH: the gateway takes "
            "no job (jb) with a product, whose registration sets it; leave job out"
        )
    return None


def product_job_validator(v: str | None, info: ValidationInfo) -> str | None:
    """`product_job_problem` as a field validator of `item_code` (declared after `job`)."""
    problem = product_job_problem(info.data.get("job", "CAPTURE"), v)
    if problem:
        raise ValueError(problem)
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
    _documented(maxLength=50, pattern=_COD_PATTERN),
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


# --- payment method (md/pt) --------------------------------------------------------------------
# md: 10 lump sum, 61 installments (with pt, a count of these), 80 revolving (seed 000 pp.9, 12).
PayMethod = Literal["10", "61", "80"]
InstallmentCount = Literal[3, 5, 6, 10, 12, 15, 18, 20, 24]
INSTALLMENT_COUNTS: tuple[int, ...] = (3, 5, 6, 10, 12, 15, 18, 20, 24)


def pay_method_problem(method: str | None, installments: int | None) -> str | None:
    """The one md/pt rule (one-touch API, checkout page): pt with md=61 and only with it."""
    if method == "61" and installments is None:
        return "installments is required with method 61"
    if method != "61" and installments is not None:
        return "installments is only allowed with method 61"
    return None


# --- merchant metadata (the gateway's free parameters, その他データ) ------------------------------
# Keys are lowercase snake case with at least one "_": no ROBOT PAYMENT field name has one
# (aid, cod, am, md, gid, acid...), so a key can never shadow a gateway field; our own
# PAYMENT_REF is refused by name. The whole form encoding (UTF-8 percent-encoded, as sent)
# of the metadata plus our payment_ref must fit the seed's 1024 bytes. docs/gateway.md.
METADATA_KEY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
METADATA_BYTES = 1024
# Our payment ids: "pay_" + 32 hex (app.db.new_id): what payment_ref takes of the 1024 bytes.
_PAYMENT_REF_VALUE = "pay_" + "0" * 32


def metadata_size(metadata: dict[str, str]) -> int:
    """Bytes the free parameters take on the wire, with our payment_ref."""
    pairs = [*metadata.items(), (PAYMENT_REF, _PAYMENT_REF_VALUE)]
    return len(urlencode(pairs, encoding="utf-8"))


def _metadata(v: dict[str, str]) -> dict[str, str]:
    for key, value in v.items():
        if len(key) > 40 or not METADATA_KEY.fullmatch(key):
            raise ValueError(
                f"key {key!r} must be lowercase snake case with at least one '_' "
                "(e.g. order_note), at most 40 characters: other names are gateway fields"
            )
        if key == PAYMENT_REF:
            raise ValueError(f"key {PAYMENT_REF!r} is reserved for our payment id")
        if not value.isprintable():
            raise ValueError(f"value of {key!r} must not contain control characters")
        refuse_card_data(value)
    size = metadata_size(v)
    if size > METADATA_BYTES:
        raise ValueError(
            f"is {size} bytes form-encoded with our payment_ref; the gateway takes at most "
            f"{METADATA_BYTES}"
        )
    return v


Metadata = Annotated[
    dict[Annotated[str, Strict()], Annotated[str, Strict()]],
    AfterValidator(_metadata),
    _documented(
        propertyNames={"pattern": f"^{METADATA_KEY.pattern}$", "maxLength": 40},
        description="merchant metadata, sent as the gateway's free parameters (その他データ) "
        "and returned as sent; keys lowercase snake case with a '_', everything "
        "form-encoded with our payment_ref at most 1024 bytes",
    ),
]
