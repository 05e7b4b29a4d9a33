"""A request as the operations see it: its id and every element value in document order
(stripped, multibyte fields decoded from Base64), then the checks on them: the characters the
XML rules refuse, each element's type and length (types 04, 05, 07), the required ones (03),
`sps_hashcode` (09) and `request_date`/`limit_second` (10)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.sandbox.clock import JST
from app.sandbox.sbps import codes
from app.sandbox.sbps.wire import ENCODING, FORBIDDEN_IN_VALUE, Node, WireError, sps_hashcode

REQUEST_ROOT = "sps-api-request"

# 9 digits, X half-width characters, M multibyte (Base64 of Shift_JIS on the wire), U a URL.
Kind = Literal["9", "X", "M", "U"]


@dataclass(frozen=True)
class Spec:
    kind: Kind
    max_len: int
    exact: bool = False
    allowed: frozenset[str] = frozenset()


def _one_of(*values: str) -> frozenset[str]:
    return frozenset(values)


# Lengths as the public integrations send them; M counts Shift_JIS bytes after decoding.
SPECS: dict[str, Spec] = {
    "merchant_id": Spec("9", 5, exact=True),
    "service_id": Spec("9", 3, exact=True),
    "cust_code": Spec("X", 64),
    "order_id": Spec("X", 38),
    "item_id": Spec("X", 32),
    "item_name": Spec("M", 40),
    "tax": Spec("9", 7),
    "amount": Spec("9", 7),
    "free1": Spec("M", 20),
    "free2": Spec("M", 20),
    "free3": Spec("M", 20),
    "order_rowno": Spec("9", 3),
    "sps_cust_info_return_flg": Spec("9", 1, allowed=_one_of("0", "1")),
    "dtl_rowno": Spec("9", 3),
    "dtl_item_id": Spec("X", 32),
    "dtl_item_name": Spec("M", 40),
    "dtl_item_count": Spec("9", 6),
    "dtl_tax": Spec("9", 7),
    "dtl_amount": Spec("9", 7),
    "dealings_type": Spec("9", 2, allowed=_one_of("10", "21", "61", "80")),
    "divide_times": Spec("9", 3),
    "bonus_details_times": Spec("9", 2),
    "token": Spec("X", 512),
    "token_key": Spec("X", 512),
    "cust_manage_flg": Spec("9", 1, allowed=_one_of("0", "1")),
    "cardbrand_return_flg": Spec("9", 1, allowed=_one_of("0", "1")),
    # Encrypted mode (3DES blocks) is not simulated: only 0 is a defined value here.
    "encrypted_flg": Spec("9", 1, allowed=_one_of("0")),
    "request_date": Spec("9", 14, exact=True),
    "limit_second": Spec("9", 4),
    "sps_hashcode": Spec("X", 40, exact=True),
    "sps_transaction_id": Spec("X", 32),
    "tracking_id": Spec("9", 14, exact=True),
    "processing_datetime": Spec("9", 14, exact=True),
    "tds_info_token": Spec("X", 512),
    "tds_info_token_key": Spec("X", 512),
    "ok_return_url": Spec("U", 256),
    "ng_return_url": Spec("U", 256),
    "tds_authentication_id": Spec("X", 32),
    "pay_info_control_type": Spec("X", 1, allowed=_one_of("A", "B")),
    "pay_info_detail_control_type": Spec("X", 1, allowed=_one_of("A", "B")),
}
MULTIBYTE = frozenset(name for name, spec in SPECS.items() if spec.kind == "M")

_HALF_WIDTH = re.compile(r"[\x20-\x7e]*")
_URL = re.compile(r"https?://[\x21-\x7e]+")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")


def leaf_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


@dataclass
class Request:
    id: str
    values: list[tuple[str, str]]  # (path, value) in document order

    @property
    def method(self) -> str:
        tail = self.id.rsplit("-", 1)[-1]
        return tail if len(tail) == 3 and tail.isdigit() else codes.NO_METHOD

    def get(self, path: str) -> str:
        return next((v for p, v in self.values if p == path), "")

    def has(self, path: str) -> bool:
        return bool(self.get(path))

    def hash_input(self) -> list[str]:
        return [v for p, v in self.values if p != "sps_hashcode"]


def _decode_multibyte(name: str, value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode(ENCODING)
    except (binascii.Error, UnicodeDecodeError):
        raise codes.field_error(codes.ATTRIBUTE, name) from None


def read_request(root: Node) -> Request:
    """The values of a parsed document; 04 for a tab/CR/LF in a value, a space in a numeric
    one, or a multibyte field that is not Base64 of Shift_JIS."""
    if root.tag != REQUEST_ROOT or not root.attrs.get("id"):
        raise WireError(f"the root is not <{REQUEST_ROOT} id=...>")
    values: list[tuple[str, str]] = []
    for path, leaf in root.leaves():
        name = leaf_name(path)
        spec = SPECS.get(name)
        raw = leaf.text
        if any(ch in raw for ch in FORBIDDEN_IN_VALUE):
            raise codes.field_error(codes.ATTRIBUTE, name)
        if spec is not None and spec.kind == "9" and " " in raw:
            raise codes.field_error(codes.ATTRIBUTE, name)
        value = raw.strip()
        if name in MULTIBYTE and value:
            # The hash takes the decoded value, stripped like every other one.
            value = _decode_multibyte(name, value).strip()
        values.append((path, value))
    return Request(root.attrs["id"], values)


def _check(name: str, value: str, spec: Spec) -> None:
    if spec.kind == "9" and not value.isdigit():
        raise codes.field_error(codes.ATTRIBUTE, name)
    if spec.kind in ("X", "U") and not _HALF_WIDTH.fullmatch(value):
        raise codes.field_error(codes.ATTRIBUTE, name)
    if spec.kind == "U" and not _URL.fullmatch(value):
        raise codes.field_error(codes.ATTRIBUTE, name)
    size = len(value.encode(ENCODING)) if spec.kind == "M" else len(value)
    if size > spec.max_len or (spec.exact and size != spec.max_len):
        raise codes.field_error(codes.LENGTH, name)
    if spec.allowed and value not in spec.allowed:
        raise codes.field_error(codes.DEFINED, name)


def validate(request: Request, required: Iterable[str]) -> None:
    """Types and lengths of every known element, in document order, then the required ones."""
    for path, value in request.values:
        spec = SPECS.get(leaf_name(path))
        if spec is not None and value:
            _check(leaf_name(path), value, spec)
    for path in required:
        if not request.has(path):
            raise codes.field_error(codes.REQUIRED, leaf_name(path))


def check_hash(request: Request, hash_key: str) -> None:
    sent = request.get("sps_hashcode")
    if not sent:
        raise codes.field_error(codes.REQUIRED, "sps_hashcode")
    if not _HEX40.fullmatch(sent):
        raise codes.field_error(codes.ATTRIBUTE, "sps_hashcode")
    expected = sps_hashcode(request.hash_input(), hash_key)
    if not hmac.compare_digest(expected, sent.lower()):
        raise codes.SbpsError(codes.code(codes.HASH_MISMATCH, method=request.method))


def parse_jst(value: str) -> datetime | None:
    """YYYYMMDDHHMMSS in JST, or None if it is no such time."""
    if len(value) != 14 or not value.isdigit():
        return None
    try:
        return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=JST)
    except ValueError:
        return None


def check_request_date(
    request: Request, now: datetime, *, default_limit: int, future_tolerance: float
) -> None:
    """Older than `limit_second` (or too far ahead of our clock): type 10."""
    raw = request.get("request_date")
    if not raw:
        raise codes.field_error(codes.REQUIRED, "request_date")
    sent = parse_jst(raw)
    if sent is None:
        raise codes.field_error(codes.DEFINED, "request_date")
    limit = request.get("limit_second")
    seconds = int(limit) if limit.isdigit() else default_limit
    age = (now - sent).total_seconds()
    if age > seconds or -age > future_tolerance:
        raise codes.SbpsError(codes.code(codes.EXPIRED_REQUEST, method=request.method))


def jst_stamp(value: datetime) -> str:
    return value.astimezone(JST).strftime("%Y%m%d%H%M%S")
