"""Every SBPS API issue 20 names: its request id and its request's element order.

Sources (research/sbps-notes.md "Requests"): the notes' own lists [C unless marked], the Ruby
gem's request classes for the elements the notes leave out [S], and guesses where neither
says [?]. An absent or empty value is simply not sent (the gem does the same; the hash is the
same either way, an absent value adding nothing), so a layout may list a superset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from app.gateway.sbps.codec import encode_request, prepare
from app.gateway.sbps.elements import Block, Element, Leaf
from app.gateway.sbps.hashcode import (
    HASHCODE,
    LIMIT_SECOND,
    HashKey,
    request_date,
    sps_hashcode,
)

CREDIT_AUTHORIZE = "ST01-00131-101"  # authorization with a token, or on a stored card
COMMIT = "ST02-00101-101"  # 確定
SALES = "ST02-00201-101"  # 売上 (capture), amount may be lower than authorized
CANCEL = "ST02-00305-101"  # cancel an authorization before sales
REFUND = "ST02-00303-101"  # 返金 of a sold charge
PARTIAL_REFUND = "ST02-00307-101"
LOOKUP = "MG01-00101-101"  # transaction lookup: settles `unknown`
CARD_SAVE = "MG02-00131-101"  # save a card on cust_code with a token
CARD_LOOKUP = "MG02-00104-101"
CARD_DELETE = "MG02-00103-101"  # [S]
REAUTHORIZE = "ST01-00133-101"  # on an earlier tracking_id
TDS_START = "TA02-00101-101"  # 3-D Secure 2.0 in API type [S]
TDS_AUTHORIZE = "ST01-00118-101"  # authorization after the 3-D Secure return [S]

# Set by build_request, never by the caller.
_GENERATED = frozenset({"request_date", "limit_second", HASHCODE})


@dataclass(frozen=True, slots=True)
class Group:
    """A nested block; `repeated` names the block each item of a list becomes (dtls/dtl)."""

    name: str
    items: tuple[str | Group, ...]
    repeated: str | None = None


Item = str | Group

_HEAD = ("merchant_id", "service_id")
_TAIL = ("encrypted_flg", "request_date", "limit_second", HASHCODE)
_STATE_TAIL = ("request_date", "limit_second", HASHCODE)  # no encrypted_flg (the gem)
# The order part of an authorization: the notes list cust_code, order_id, item_id,
# item_name, amount, sps_cust_info_return_flg, dtls [C]; tax, free1-3 and order_rowno sit
# where the gem puts them [S].
_ORDER = (
    "cust_code",
    "order_id",
    "item_id",
    "item_name",
    "tax",  # [S]
    "amount",
    "free1",  # [S]
    "free2",  # [S]
    "free3",  # [S]
    "order_rowno",  # [S]
    "sps_cust_info_return_flg",
)
_DTLS = Group(
    "dtls",
    ("dtl_rowno", "dtl_item_id", "dtl_item_name", "dtl_item_count", "dtl_tax", "dtl_amount"),
    repeated="dtl",
)  # dtl_tax [S]
# dealings_type 10 lump sum, 21 bonus, 61 installments (with divide_times), 80 revolving.
_PAY_METHOD = Group("pay_method_info", ("dealings_type", "divide_times"))
_TRANSACTION = ("sps_transaction_id", "tracking_id", "processing_datetime")
_AMOUNT = Group("pay_option_manage", ("amount",))
_BRAND = Group("pay_option_manage", ("cardbrand_return_flg",))

LAYOUTS: dict[str, tuple[Item, ...]] = {
    CREDIT_AUTHORIZE: (
        *_HEAD,
        *_ORDER,
        _DTLS,
        _PAY_METHOD,
        # cust_manage_flg 1 saves the card on cust_code; no token = the stored card.
        Group(
            "pay_option_manage", ("token", "token_key", "cust_manage_flg", "cardbrand_return_flg")
        ),
        *_TAIL,
    ),
    COMMIT: (*_HEAD, *_TRANSACTION, *_STATE_TAIL),
    SALES: (*_HEAD, *_TRANSACTION, _AMOUNT, *_STATE_TAIL),
    CANCEL: (*_HEAD, *_TRANSACTION, *_STATE_TAIL),
    REFUND: (*_HEAD, *_TRANSACTION, *_STATE_TAIL),
    PARTIAL_REFUND: (*_HEAD, *_TRANSACTION, _AMOUNT, *_STATE_TAIL),
    # response_info_type and the brand flag: the gem [S].
    LOOKUP: (*_HEAD, "sps_transaction_id", "tracking_id", "response_info_type", _BRAND, *_TAIL),
    CARD_SAVE: (
        *_HEAD,
        "cust_code",
        "sps_cust_info_return_flg",
        Group("pay_method_info", ("resrv1", "resrv2", "resrv3")),  # [S]
        Group("pay_option_manage", ("token", "token_key", "cardbrand_return_flg")),
        *_TAIL,
    ),
    CARD_LOOKUP: (
        *_HEAD,
        "cust_code",
        "sps_cust_info_return_flg",
        "response_info_type",  # [S]
        _BRAND,  # [S]
        *_TAIL,
    ),
    CARD_DELETE: (*_HEAD, "cust_code", "sps_cust_info_return_flg", *_TAIL),  # [S]
    # [?] The gem has only the legacy ST01-00113-101; its order is assumed to hold for 133.
    REAUTHORIZE: (
        *_HEAD,
        "tracking_id",
        *_ORDER,
        _DTLS,
        _PAY_METHOD,
        Group(
            "pay_option_manage",
            (
                "cust_manage_flg",
                "cardbrand_return_flg",
                "pay_info_control_type",
                "pay_info_detail_control_type",
            ),
        ),
        *_TAIL,
    ),
    # [S] pay_option_manage per the notes; the order part [?], assumed as ST01-00131-101's.
    TDS_START: (
        *_HEAD,
        *_ORDER,
        _DTLS,
        _PAY_METHOD,
        Group(
            "pay_option_manage",
            (
                "token",
                "token_key",
                "tds_info_token",
                "tds_info_token_key",
                "ok_return_url",
                "ng_return_url",
            ),
        ),
        *_TAIL,
    ),
    # [S] pay_option_manage{tds_authentication_id} per the notes; the rest [?] as above.
    TDS_AUTHORIZE: (
        *_HEAD,
        *_ORDER,
        _DTLS,
        _PAY_METHOD,
        Group("pay_option_manage", ("tds_authentication_id",)),
        *_TAIL,
    ),
}

Values = Mapping[str, object]


def _leaf_value(name: str, value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"{name}: a str or int, not {type(value).__name__}")
    text = str(value)
    return text or None


def _elements(items: tuple[Item, ...], values: Values, where: str) -> tuple[Element, ...]:
    known = {item if isinstance(item, str) else item.name for item in items}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: no such element {unknown} in this request")
    out: list[Element] = []
    for item in items:
        value = values.get(item if isinstance(item, str) else item.name)
        if isinstance(item, str):
            text = _leaf_value(item, value)
            if text is not None:
                out.append(Leaf(item, text))
        elif value is not None:
            block = _group(item, value, f"{where}/{item.name}")
            if block.children:
                out.append(block)
    return tuple(out)


def _group(group: Group, value: object, where: str) -> Block:
    if group.repeated is None:
        if not isinstance(value, Mapping):
            raise TypeError(f"{where}: a mapping of its elements")
        return Block(group.name, _elements(group.items, value, where))
    if not isinstance(value, Sequence) or isinstance(value, str | bytes):
        raise TypeError(f"{where}: a list of {group.repeated} mappings")
    rows: list[Element] = []
    for index, row in enumerate(value):
        if not isinstance(row, Mapping):
            raise TypeError(f"{where}[{index}]: a mapping of its elements")
        rows.append(Block(group.repeated, _elements(group.items, row, f"{where}[{index}]")))
    return Block(group.name, tuple(rows))


def _refuse_generated(values: Values) -> None:
    generated = sorted(_GENERATED & set(values))
    if generated:
        raise ValueError(f"{generated}: set by build_request, not by the caller")


def build_elements(request_id: str, values: Values) -> tuple[Element, ...]:
    """The request's elements in its layout's order, from a (nested) mapping; unknown names
    are refused (a misspelt element would be dropped silently by SBPS or break the hash)."""
    _refuse_generated(values)
    return _elements(LAYOUTS[request_id], values, request_id)


def build_request(
    request_id: str,
    values: Values,
    *,
    key: HashKey,
    now: datetime,
    limit_second: int = LIMIT_SECOND,
) -> bytes:
    """The document to POST: values in order, request_date (JST) and limit_second added,
    sps_hashcode over exactly what is sent."""
    _refuse_generated(values)
    stamped = {**values, "request_date": request_date(now), "limit_second": limit_second}
    elements = prepare(_elements(LAYOUTS[request_id], stamped, request_id))
    signed = (*elements, Leaf(HASHCODE, sps_hashcode(elements, key)))
    return encode_request(request_id, signed)
