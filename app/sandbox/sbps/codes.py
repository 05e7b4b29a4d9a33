"""SBPS error codes: 3-digit payment method + 2-character type + 3-character item (notes,
"Responses"). The types the notes name keep their meaning; the others are this simulator's
choices where nothing public says (README, "SBPS error codes")."""

from __future__ import annotations

CREDIT = "101"
NO_METHOD = "999"  # the request's id (and so its method) could not be read

# Request information (as the token JS's types: seed 004).
REQUIRED = "03"
ATTRIBUTE = "04"
LENGTH = "05"
DEFINED = "07"
# Named by the notes.
HASH_MISMATCH = "09"
EXPIRED_REQUEST = "10"
ALREADY_SOLD = "41"
SALES_PERIOD_OVER = "42"
OVER_AUTHORIZATION = "79"
REENTRY_LIMIT = "93"
NO_CARD = "95"  # 10195999: no card registered on cust_code
DUPLICATE = "96"
PARTIAL_AMOUNT = "K0"
PARTIAL_STATE = "K1"
TOKEN_INVALID = "T1"
TOKEN_EXPIRED = "T2"
MAINTENANCE_CODES = ("10121999", "10123999", "10128999", "10136999")
# Credit declines, as the Ruby gem's TYPE_DEFINITIONS name them (type 08 is an unused code
# there); the item is ours: the card company's reason (G12, G55, G83).
DECLINED_NOT_ACCEPTED = "26"  # クレジットカード取扱不可
DECLINED_OVER_LIMIT = "22"  # クレジットカード利用限度額超過
DECLINED_NUMBER_OR_EXPIRY = "27"  # クレジットカード番号・有効期限誤り
# Ours.
UNKNOWN_TRANSACTION = "11"
WRONG_STATE = "40"
THREE_DS_FAILED = "D1"  # the client's table has the same (docs/gateway.md)
SYSTEM = "99"

NO_ITEM = "999"

# Item numbers of the request elements (ours: the public notes give none).
ITEMS: dict[str, str] = {
    name: f"{i:03d}"
    for i, name in enumerate(
        (
            "merchant_id",
            "service_id",
            "cust_code",
            "order_id",
            "item_id",
            "item_name",
            "tax",
            "amount",
            "free1",
            "free2",
            "free3",
            "order_rowno",
            "sps_cust_info_return_flg",
            "dtl_rowno",
            "dtl_item_id",
            "dtl_item_name",
            "dtl_item_count",
            "dtl_tax",
            "dtl_amount",
            "dealings_type",
            "divide_times",
            "token",
            "token_key",
            "cust_manage_flg",
            "cardbrand_return_flg",
            "encrypted_flg",
            "request_date",
            "limit_second",
            "sps_hashcode",
            "sps_transaction_id",
            "tracking_id",
            "processing_datetime",
            "tds_info_token",
            "tds_info_token_key",
            "ok_return_url",
            "ng_return_url",
            "tds_authentication_id",
            "pay_info_control_type",
            "pay_info_detail_control_type",
            "bonus_details_times",
        ),
        start=1,
    )
}


def code(type_: str, item: str = NO_ITEM, method: str = CREDIT) -> str:
    return f"{method}{type_}{item}"


class SbpsError(Exception):
    """Answered as an NG document with `code` (HTTP 200, as every API answer)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def error(type_: str, item: str = NO_ITEM) -> SbpsError:
    return SbpsError(code(type_, item))


def field_error(type_: str, name: str) -> SbpsError:
    return SbpsError(code(type_, ITEMS.get(name, NO_ITEM)))
