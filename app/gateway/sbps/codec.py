"""The SBPS API-type wire format: request documents out, response documents in.

research/sbps-notes.md: `<?xml version="1.0" encoding="Shift_JIS"?>` then
`<sps-api-request id="ST01-00131-101">` with the elements in the API's order; answers are
`<sps-api-response id="...">` (an NG answer has no `id`), HTTP 200 either way, empty elements
as `<tag/>`. Pure: no I/O. Everything unreadable raises SbpsCodecError, which the client maps
to `unknown` (the request may have been processed).
"""

from __future__ import annotations

import base64
import re
import xml.parsers.expat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal, NoReturn
from xml.sax.saxutils import escape

from app.gateway.masking import mask_card_number
from app.gateway.sbps.chars import ENCODING, FieldKind, check_value, kind_of
from app.gateway.sbps.elements import Block, Element, Leaf
from app.gateway.text import CodecError

REQUEST_ID = re.compile(r"[A-Z]{2}[0-9]{2}-[0-9]{5}-[0-9]{3}")
# A real answer is under 4 KiB (the lookup's is the longest); anything far larger is not one.
MAX_RESPONSE_BYTES = 64 * 1024
# The deepest real answer is 4 levels (root, res_pay_method_info, its detail, a leaf).
MAX_DEPTH = 8
_DECLARATION = re.compile(rb"""\A\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9_.\-]+)["']""")
_CP932_NAMES = frozenset({"shift_jis", "shift-jis", "sjis", "x-sjis", "windows-31j", "cp932"})


class SbpsCodecError(CodecError):
    """An SBPS answer that cannot be read with confidence (the client's `unknown`)."""


# --- requests ----------------------------------------------------------------------------


def prepare(elements: Iterable[Element]) -> tuple[Element, ...]:
    """The elements as they will be sent and hashed: M text replaced, 9/X values checked
    (SbpsValueError). Idempotent."""
    out: list[Element] = []
    for element in elements:
        if isinstance(element, Block):
            out.append(Block(element.name, prepare(element.children)))
        else:
            out.append(Leaf(element.name, check_value(element.name, element.value)))
    return tuple(out)


def _wire_value(leaf: Leaf) -> str:
    if kind_of(leaf.name) is FieldKind.MULTIBYTE:
        return base64.b64encode(leaf.value.encode(ENCODING)).decode("ascii")
    return escape(leaf.value)


def _write(elements: Iterable[Element]) -> Iterator[str]:
    for element in elements:
        if isinstance(element, Block):
            yield f"<{element.name}>"
            yield from _write(element.children)
            yield f"</{element.name}>"
        else:
            yield f"<{element.name}>{_wire_value(element)}</{element.name}>"


def encode_request(request_id: str, elements: Iterable[Element]) -> bytes:
    """The request document as Shift_JIS bytes. The elements are sent in the order given;
    `prepare` is applied (so what is sent is what `hashcode.sps_hashcode` of the prepared
    elements covers)."""
    if not REQUEST_ID.fullmatch(request_id):
        raise ValueError(f"not an SBPS request id: {request_id!r}")
    body = "".join(_write(prepare(elements)))
    document = (
        '<?xml version="1.0" encoding="Shift_JIS"?>'
        f'<sps-api-request id="{request_id}">{body}</sps-api-request>'
    )
    return document.encode(ENCODING)


def decode_multibyte(value: str) -> str:
    """An M value as it travels (Base64 of Shift_JIS bytes) back to text."""
    try:
        return base64.b64decode(value, validate=True).decode(ENCODING)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SbpsCodecError("not Base64 of Shift_JIS text") from exc


# --- reading documents -------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    """One element of a parsed document: a leaf has text and no children."""

    name: str
    attributes: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: str = ""


def _refuse(what: str) -> NoReturn:
    raise SbpsCodecError(f"refused: {what}")


def _text_of(raw: bytes) -> str:
    match = _DECLARATION.match(raw)
    declared = match.group(1).decode("ascii").lower() if match else "shift_jis"
    if raw.startswith(b"\xef\xbb\xbf") or declared in ("utf-8", "utf8"):
        codec = "utf-8-sig"
    elif declared in _CP932_NAMES:
        codec = ENCODING
    else:
        _refuse(f"declared encoding {declared!r}")
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        raise SbpsCodecError(f"not {declared} text") from exc


def parse_document(raw: bytes) -> Node:
    """A small, safe XML reading: no DTD (so no entity of ours, no external entity, no
    expansion bomb), bounded size and depth, no mixed content."""
    if len(raw) > MAX_RESPONSE_BYTES:
        _refuse(f"answer over {MAX_RESPONSE_BYTES} bytes")
    if not raw.strip():
        raise SbpsCodecError("empty answer")
    # Decoded here because expat reads no multibyte encoding but UTF-8/16; the declaration's
    # encoding is overridden by the one the parser is created with.
    utf8 = _text_of(raw).encode("utf-8")
    parser = xml.parsers.expat.ParserCreate(encoding="UTF-8")
    parser.SetParamEntityParsing(xml.parsers.expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[Node] = []
    roots: list[Node] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        if len(stack) >= MAX_DEPTH:
            _refuse("nesting too deep")
        node = Node(name, dict(attributes))
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(name: str) -> None:
        node = stack.pop()
        if node.children and node.text.strip():
            _refuse(f"mixed content in <{name}>")

    def text(data: str) -> None:
        if stack:
            stack[-1].text += data

    def no_dtd(*_: object) -> NoReturn:
        _refuse("a DTD or entity declaration")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_dtd
    parser.UnparsedEntityDeclHandler = no_dtd
    parser.ExternalEntityRefHandler = no_dtd
    try:
        parser.Parse(utf8, True)
    except xml.parsers.expat.ExpatError as exc:
        raise SbpsCodecError(f"not well-formed XML: {exc}") from exc
    if len(roots) != 1:
        _refuse("not one root element")
    return roots[0]


# --- responses ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PayMethodInfo:
    """`res_pay_method_info` (and its `res_pay_method_info_detail`), as sent: with
    encrypted_flg=1 these are 3DES then Base64, which this codec does not undo."""

    cc_company_code: str | None = None
    cardbrand_code: str | None = None
    recognized_no: str | None = None  # the card company's approval number
    commit_status: str | None = None  # lookup: 0 not committed, 1 committed
    payment_status: str | None = None  # lookup: 1 authorized ... 3 refunded
    # res_payinfo_key, after saving a card: a handle on the stored card, kept out of reprs
    # (and so out of logs) as ROBOT PAYMENT's user key is.
    payinfo_key: str | None = field(default=None, repr=False)
    cc_number: str | None = None  # always masked (a clear number is masked here)
    cc_expiration: str | None = None
    dealings_type: str | None = None
    divide_times: str | None = None
    bonus_details_times: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SbpsResponse:
    request_id: str | None  # the root's id; None on NG answers, which carry none
    result: Literal["OK", "NG"]
    err_code: str | None = None  # 8 characters on NG; None for `<res_err_code/>`
    sps_transaction_id: str | None = None
    tracking_id: str | None = None
    process_date: str | None = None  # YYYYMMDDHHMMSS, JST
    date: str | None = None  # res_date
    status: str | None = None  # res_status (lookup)
    pay_method_info: PayMethodInfo | None = None
    sps_cust_no: str | None = None
    sps_payment_no: str | None = None
    tds_authentication_id: str | None = None  # TA02-00101-101 [S]
    redirect_url: str | None = None  # TA02-00101-101 [S]
    # Every other leaf, by its path below the root ("res_x/res_y"), first occurrence kept.
    other: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result == "OK"


def _leaves(node: Node, prefix: str = "") -> Iterator[tuple[str, str]]:
    for child in node.children:
        path = f"{prefix}{child.name}"
        if child.children:
            yield from _leaves(child, path + "/")
        else:
            yield path, child.text.strip()


_INFO = "res_pay_method_info/"
_DETAIL = _INFO + "res_pay_method_info_detail/"
_INFO_FIELDS = {
    "cc_company_code": "cc_company_code",
    "cardbrand_code": "cardbrand_code",
    "recognized_no": "recognized_no",
    "commit_status": "commit_status",
    "payment_status": "payment_status",
    "res_payinfo_key": "payinfo_key",
    "cc_number": "cc_number",
    "cc_expiration": "cc_expiration",
    "dealings_type": "dealings_type",
    "divide_times": "divide_times",
    "bonus_details_times": "bonus_details_times",
}
_TOP_FIELDS = {
    "res_err_code": "err_code",
    "res_sps_transaction_id": "sps_transaction_id",
    "res_tracking_id": "tracking_id",
    "res_process_date": "process_date",
    "res_date": "date",
    "res_status": "status",
    "res_sps_info/res_sps_cust_no": "sps_cust_no",
    "res_sps_info/res_sps_payment_no": "sps_payment_no",
    "res_tds_authentication_id": "tds_authentication_id",
    "res_redirect_url": "redirect_url",
    "redirect_url": "redirect_url",
}


def _masked(number: str | None) -> str | None:
    if number is None or "*" in number or not number.isdigit():
        return number
    return mask_card_number(number)


def _info_name(path: str) -> str | None:
    """The PayMethodInfo field a leaf path stands for, if any."""
    for prefix in (_DETAIL, _INFO):
        rest = path.removeprefix(prefix)
        if rest != path and "/" not in rest:
            return _INFO_FIELDS.get(rest)
    return None


def parse_response(raw: bytes, *, expected_id: str | None = None) -> SbpsResponse:
    """An answer document read into a typed result. `expected_id`: the request id sent; an
    answer naming another one is refused (an NG answer names none, which is fine)."""
    root = parse_document(raw)
    if root.name != "sps-api-response":
        _refuse(f"root <{root.name}>")
    request_id = root.attributes.get("id") or None
    if expected_id is not None and request_id is not None and request_id != expected_id:
        _refuse(f"answer to {request_id}, not {expected_id}")
    top: dict[str, str] = {}
    info: dict[str, str] = {}
    other: dict[str, str] = {}
    for path, value in _leaves(root):
        info_name = _info_name(path)
        if info_name is not None:
            target, key = info, info_name
        elif path == "res_result":
            target, key = top, "result"
        elif path in _TOP_FIELDS:
            target, key = top, _TOP_FIELDS[path]
        else:
            other.setdefault(path, value)
            continue
        if key in target and target[key] != value:
            # Two values for one field we act on (OK and NG...): ambiguous.
            _refuse(f"{path} given twice")
        target[key] = value
    result = top.get("result")
    if result not in ("OK", "NG"):
        _refuse(f"res_result {result!r}")

    def get(source: dict[str, str], key: str) -> str | None:
        return source.get(key) or None

    pay_method_info = None
    if info or any(path.startswith(_INFO) for path in other):
        pay_method_info = PayMethodInfo(
            cc_company_code=get(info, "cc_company_code"),
            cardbrand_code=get(info, "cardbrand_code"),
            recognized_no=get(info, "recognized_no"),
            commit_status=get(info, "commit_status"),
            payment_status=get(info, "payment_status"),
            payinfo_key=get(info, "payinfo_key"),
            cc_number=_masked(get(info, "cc_number")),
            cc_expiration=get(info, "cc_expiration"),
            dealings_type=get(info, "dealings_type"),
            divide_times=get(info, "divide_times"),
            bonus_details_times=get(info, "bonus_details_times"),
        )
    return SbpsResponse(
        request_id=request_id,
        result="OK" if result == "OK" else "NG",
        err_code=get(top, "err_code"),
        sps_transaction_id=get(top, "sps_transaction_id"),
        tracking_id=get(top, "tracking_id"),
        process_date=get(top, "process_date"),
        date=get(top, "date"),
        status=get(top, "status"),
        pay_method_info=pay_method_info,
        sps_cust_no=get(top, "sps_cust_no"),
        sps_payment_no=get(top, "sps_payment_no"),
        tds_authentication_id=get(top, "tds_authentication_id"),
        redirect_url=get(top, "redirect_url"),
        other=other,
    )
