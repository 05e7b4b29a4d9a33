"""SBPS error codes (`res_err_code`) as the gateway-neutral GatewayErrorInfo.

research/sbps-notes.md "Responses": 8 characters = 3-digit payment method (101 = credit) +
2-character type + 3-character item. The type says what happened, the item which element it
is about. Type and item names follow the Ruby gem's `api_error/definitions.rb` [S] where the
notes name none; the meanings the domain acts on (kind, outcome) are ours, each with its
reason below. Synthetic codes (timeout...) are the shared table's (app/gateway/codes.py).
"""

from __future__ import annotations

import re

from app.gateway import codes as shared
from app.gateway.base import ErrorKind, GatewayErrorInfo, Outcome, kind_for_status

DECLINE, INVALID, CONFLICT, MISCONFIGURED, UNAVAILABLE = 402, 422, 409, 502, 503
CREDIT = "101"
THREE_DS_FAILED_TYPE = "D1"
CODE = re.compile(r"([0-9]{3})([0-9A-Z]{2})([0-9A-Z]{3})")

# One answer per card brand's centre in maintenance (the notes): nothing was processed.
MAINTENANCE_CODES = frozenset({"10121999", "10123999", "10128999", "10136999"})
NO_CARD_REGISTERED = "10195999"  # MG02-00104-101 on a cust_code without a card (the notes)
# Failures without an SBPS answer, described as for every provider.
SYNTHETIC_CODES = frozenset(
    {shared.TIMEOUT_CODE, shared.CONNECT_ERROR, shared.HTTP_ERROR, shared.BAD_RESPONSE}
)

# (stable code, http status, retryable, English, Japanese)
_Row = tuple[str, int, bool, str, str]

_CHECK_EN = "Please check it and try again."
_CHECK_JA = "ご確認のうえ再度お試しください。"
_DECLINED_EN = "This card cannot be used. Please use another card or contact the card issuer."
_DECLINED_JA = (
    "このカードはご利用いただけません。"
    "別のカードをご利用いただくか、カード会社にお問い合わせください。"
)
_UNKNOWN_EN = (
    "SBPS had a system error; whether the request was processed is not known yet and will "
    "be confirmed automatically. Do not pay again."
)
_UNKNOWN_JA = (
    "決済システムでシステムエラーが発生しました。処理されたかどうかは自動で確認します。"
    "二重決済を防ぐため、再度のお支払いはお控えください。"
)
_STATE_EN = "The payment is not in a state that allows this. Confirm its status before acting."
_STATE_JA = "決済の状態をご確認のうえ操作してください。"

# Types of every payment method (the gem's TYPE_COMMON_DEFINITIONS). 03-07 and 13 are
# completed with the item's name (see _item_info).
_COMMON: dict[str, _Row] = {
    "00": (
        "xml_format_error",
        MISCONFIGURED,
        False,
        "SBPS could not read our request document (XML format error).",
        "リクエストのXML形式に誤りがあります。",
    ),
    "01": (
        "payment_method_unavailable",
        MISCONFIGURED,
        False,
        "This payment method is not enabled for the shop's SBPS service.",
        "この支払方法はご利用いただけない設定になっています。",
    ),
    "02": (
        "unknown_request_id",
        MISCONFIGURED,
        False,
        "SBPS does not know the API request id we sent.",
        "APIリクエストIDが存在しません。",
    ),
    "09": (
        "hash_mismatch",
        MISCONFIGURED,
        False,
        "SBPS rejected the request's checksum (sps_hashcode): check the configured "
        "hash key and the request encoding.",
        "チェックサム(sps_hashcode)が一致しません。ハッシュキーの設定をご確認ください。",
    ),
    # Retryable: a new send carries a new request_date; if it persists, this server's
    # clock is off (SBPS compares request_date, JST, with limit_second).
    "10": (
        "request_expired",
        MISCONFIGURED,
        True,
        "SBPS refused the request as expired (request_date older than limit_second); "
        "nothing was processed. If it persists, check this server's clock.",
        "リクエストの有効期限が切れていたため処理されませんでした。"
        "繰り返す場合はサーバーの時刻をご確認ください。",
    ),
    "11": (
        "transaction_unknown",
        CONFLICT,
        False,
        "SBPS does not know the transaction (sps_transaction_id) this request is about.",
        "処理対象のSBPSトランザクションIDが不正です。",
    ),
    "12": (
        "tracking_id_unknown",
        CONFLICT,
        False,
        "SBPS does not know the tracking id this request is about.",
        "処理対象のトラッキングIDが不正です。",
    ),
    "14": (
        "merchant_rejected",
        MISCONFIGURED,
        False,
        "SBPS rejected the merchant id / service id (SBPS_MERCHANT_ID, SBPS_SERVICE_ID).",
        "マーチャントID・サービスIDが不正です。設定をご確認ください。",
    ),
    "81": (
        "request_parameter_error",
        MISCONFIGURED,
        False,
        "SBPS rejected the request's parameters.",
        "APIリクエストパラメータが不正です。",
    ),
    # System errors after the request reached SBPS (gateway, card company connection or
    # answer): it may have been processed, so the lookup settles it (the notes' trap).
    **dict.fromkeys(
        ("80", "83", "84", "85", "86", "90", "92"),
        ("gateway_system_error", MISCONFIGURED, False, _UNKNOWN_EN, _UNKNOWN_JA),
    ),
    "93": (
        "too_many_attempts",
        DECLINE,
        False,
        "Too many attempts with this card. Please try again later or use another card.",
        "入力回数の上限に達しました。しばらくしてから再度お試しいただくか、"
        "別のカードをご利用ください。",
    ),
    "94": (
        "payment_not_completed",
        CONFLICT,
        False,
        "The payment has not been completed at SBPS.",
        "決済が完了していません。",
    ),
    "95": (
        "customer_mismatch",
        CONFLICT,
        False,
        "The customer (cust_code) does not match what SBPS holds for it.",
        "顧客情報が一致しません。",
    ),
    # The notes: on a deliberate re-send, evidence the first request arrived.
    "96": (
        "duplicate_request",
        CONFLICT,
        False,
        "SBPS has already received this request; its result is being confirmed. Do not pay again.",
        "同じリクエストがすでに受け付けられています。結果を確認しますので、"
        "再度のお支払いはお控えください。",
    ),
}

_DECLINES: dict[str, tuple[str, str, str]] = {
    "20": ("card_declined", _DECLINED_EN, _DECLINED_JA),  # fraud filter: not said to the shopper
    "21": ("card_company_error", _DECLINED_EN, _DECLINED_JA),
    "22": (
        "insufficient_limit",
        "The card's credit limit would be exceeded. Please use another card.",
        "ご利用限度額を超えています。別のカードをご利用ください。",
    ),
    "23": ("card_declined", _DECLINED_EN, _DECLINED_JA),
    "24": ("incorrect_pin", "The card's PIN was incorrect.", "暗証番号が正しくありません。"),
    "25": ("card_declined", _DECLINED_EN, _DECLINED_JA),
    "26": (
        "card_not_accepted",
        "This card cannot be used at this shop. Please use another card.",
        "このカードは当店ではご利用いただけません。別のカードをご利用ください。",
    ),
    "27": (
        "invalid_card_number",
        "The card number or expiry date is incorrect. " + _CHECK_EN,
        "カード番号または有効期限が正しくありません。" + _CHECK_JA,
    ),
    "28": ("card_declined", _DECLINED_EN, _DECLINED_JA),
    **dict.fromkeys(
        ("29", "30", "31", "32", "33", "34", "35"),
        (
            "invalid_payment_method",
            "The card does not allow this payment method (installments or bonus). "
            "Please choose lump-sum payment or another card.",
            "このカードでは指定の支払方法(分割・ボーナス払い)をご利用いただけません。"
            "一括払いまたは別のカードをご利用ください。",
        ),
    ),
    "36": ("card_declined", _DECLINED_EN, _DECLINED_JA),
    "61": (
        "incorrect_cvv",
        "The security code is incorrect. " + _CHECK_EN,
        "セキュリティコードが正しくありません。" + _CHECK_JA,
    ),
    **dict.fromkeys(
        (
            "63",
            "64",
            "65",
            "66",
            "67",
            "68",
            "69",
            "70",
            "71",
            "72",
            "73",
            "74",
            "75",
            "76",
            "77",
            "K2",
        ),
        ("card_declined", _DECLINED_EN, _DECLINED_JA),
    ),
}

# Credit types about the charge's state: (stable code, English, Japanese, kind).
_STATES: dict[str, tuple[str, str, str, ErrorKind]] = {
    "37": (
        "auto_sales_enabled",
        "Sales are automatic for this service; no capture is needed.",
        "自動売上が設定されているため、売上要求は不要です。",
        ErrorKind.CONFLICT,
    ),
    **dict.fromkeys(
        ("39", "44", "51", "K4"),
        (
            "no_authorization",
            "SBPS has no authorization for this transaction.",
            "与信結果が存在しないため、処理を中止しました。",
            ErrorKind.CONFLICT,
        ),
    ),
    # "Already canceled / sold / refunded / done" may only mean our view is stale.
    **dict.fromkeys(
        ("40", "45", "52"),
        (
            "already_canceled",
            "The authorization is already canceled. " + _STATE_EN,
            "与信取消済みのため、処理を中止しました。" + _STATE_JA,
            ErrorKind.STALE_VIEW,
        ),
    ),
    "41": (
        "already_captured",
        "The charge is already sold (captured). " + _STATE_EN,
        "売上処理が完了済みのため、処理を中止しました。" + _STATE_JA,
        ErrorKind.STALE_VIEW,
    ),
    "42": (
        "capture_period_over",
        "Sales are possible only until the end of the 3rd month after the authorization.",
        "売上処理は与信日から3ヶ月目末日まで有効です。",
        ErrorKind.CONFLICT,
    ),
    "46": (
        "already_refunded",
        "The charge is already refunded. " + _STATE_EN,
        "返金処理済みのため、返金処理を中止しました。" + _STATE_JA,
        ErrorKind.STALE_VIEW,
    ),
    "60": (
        "already_completed",
        "The transaction is already completed. " + _STATE_EN,
        "既に処理が完了しているため、コミット(取消)を実施できません。" + _STATE_JA,
        ErrorKind.STALE_VIEW,
    ),
    **dict.fromkeys(
        ("47", "54", "57", "58"),
        (
            "recurring_conflict",
            "A recurring billing prevents this operation.",
            "継続課金の状態により処理を中止しました。",
            ErrorKind.CONFLICT,
        ),
    ),
    **dict.fromkeys(
        ("49", "50", "59"),
        (
            "use_refund",
            "SBPS asks for a refund (after commit) instead of this operation.",
            "この決済は返金要求で処理してください。",
            ErrorKind.CONFLICT,
        ),
    ),
    "56": (
        "refund_period_over",
        "The refund period of this charge is over.",
        "返金可能期間を過ぎています。",
        ErrorKind.CONFLICT,
    ),
    "K0": (
        "not_captured",
        "The charge is not sold yet, so it cannot be partly refunded.",
        "売上処理未実施のため、部分返金処理を中止しました。",
        ErrorKind.CONFLICT,
    ),
    "K5": (
        "already_authorized",
        "The authorization already succeeded. " + _STATE_EN,
        "正常与信済みのため、処理を中止しました。" + _STATE_JA,
        ErrorKind.CONFLICT,
    ),
}

_CREDIT_OTHER: dict[str, tuple[_Row, ErrorKind]] = {
    # 3-D Secure not passed (ST01-00118-101 on an authentication that failed, was canceled
    # or expired). The notes give no code for it [?]: D1 is ours, shared with the simulator
    # (type 90 is a system error in the gem's table, so it cannot be that). A decline: the
    # shopper may try again with the card's authentication or another card.
    THREE_DS_FAILED_TYPE: (
        (
            "three_ds_failed",
            DECLINE,
            False,
            "The card's identity check (3-D Secure) was not completed, so nothing was charged. "
            "Please try again or use another card.",
            "カードの本人認証(3Dセキュア)が完了しなかったため、お支払いできませんでした"
            "(課金はされていません)。もう一度お試しいただくか、別のカードをご利用ください。",
        ),
        ErrorKind.THREE_DS_FAILED,
    ),
    "79": (
        (
            "amount_over_authorization",
            INVALID,
            False,
            "The amount is higher than the authorized amount.",
            "指定された金額が与信時金額を超えているため、売上処理を中止しました。",
        ),
        ErrorKind.INVALID,
    ),
    "K1": (
        (
            "amount_over_sales",
            INVALID,
            False,
            "The refunds would exceed the sold amount.",
            "返金金額の合計が売上時金額を超えているため、部分返金処理を中止しました。",
        ),
        ErrorKind.INVALID,
    ),
    **dict.fromkeys(
        ("38", "43"),
        (
            (
                "sales_by_file",
                MISCONFIGURED,
                False,
                "This service's sales and refunds go by file, not by API.",
                "売上・返金はファイルにて処理してください。",
            ),
            ErrorKind.MISCONFIGURED,
        ),
    ),
    **dict.fromkeys(
        ("78", "K3"),
        (
            (
                "request_flag_error",
                MISCONFIGURED,
                False,
                "SBPS rejected a flag of our request (card save or brand return).",
                "リクエストのフラグ指定に誤りがあります。",
            ),
            ErrorKind.MISCONFIGURED,
        ),
    ),
    # The notes: T1 the token could not be decrypted, T2 the token expired.
    "T1": (
        (
            "token_invalid",
            INVALID,
            False,
            "The card token is invalid. Please enter the card details again.",
            "カードのトークンが無効です。もう一度カード情報を入力してください。",
        ),
        ErrorKind.TOKEN_INVALID,
    ),
    "T2": (
        (
            "token_expired",
            INVALID,
            False,
            "The card token has expired. Please enter the card details again.",
            "カードのトークンの有効期限が切れました。もう一度カード情報を入力してください。",
        ),
        ErrorKind.TOKEN_INVALID,
    ),
}

# Items (the gem's ITEM_COMMON_DEFINITIONS and credit ITEM_DEFINITIONS):
# (element, English, Japanese). The neutral request field is in _FIELDS.
_ITEMS: dict[str, tuple[str, str, str]] = {
    "000": ("id", "API request id", "APIリクエストID"),
    "001": ("merchant_id", "merchant id", "マーチャントID"),
    "002": ("service_id", "service id", "サービスID"),
    "003": ("cust_code", "customer id", "顧客ID"),
    "004": ("order_id", "order id", "購入ID"),
    "005": ("item_id", "item id", "商品ID"),
    "006": ("item_name", "item name", "商品名称"),
    "007": ("tax", "tax", "税額"),
    "008": ("amount", "amount", "金額(税込)"),
    "010": ("free1", "free field 1", "自由欄1"),
    "011": ("free2", "free field 2", "自由欄2"),
    "012": ("free3", "free field 3", "自由欄3"),
    "013": ("order_rowno", "order row number", "請求番号枝番"),
    "014": ("dtl_rowno", "detail row number", "明細行番号"),
    "015": ("dtl_item_id", "detail item id", "明細商品ID"),
    "016": ("dtl_item_name", "detail item name", "明細商品名称"),
    "017": ("dtl_item_count", "detail quantity", "明細数量"),
    "018": ("dtl_tax", "detail tax", "明細税額"),
    "019": ("dtl_amount", "detail amount", "明細金額(税込)"),
    "020": ("pay_method", "payment type", "決済区分"),
    "023": ("request_date", "request date", "リクエスト日時"),
    "024": ("limit_second", "request time limit", "リクエスト許容時間"),
    "025": ("sps_hashcode", "checksum", "チェックサム"),
    "026": ("sps_transaction_id", "SBPS transaction id", "処理対象SBPSトランザクションID"),
    "027": ("tracking_id", "tracking id", "処理対象トラッキングID"),
    "028": ("encrypted_flg", "3DES encryption flag", "3DES暗号化フラグ"),
    "029": ("processing_datetime", "processing date", "処理日時"),
    "030": ("sps_cust_info_return_flg", "SBPS customer info flag", "SBPS顧客情報返却フラグ"),
    "200": ("cc_number", "card number", "クレジットカード番号"),
    "201": ("cc_expiration", "card expiry date", "クレジットカード有効期限"),
    "202": ("dealings_type", "payment method", "取引区分"),
    "203": ("divide_times", "number of installments", "分割回数"),
    "205": ("cust_manage_flg", "card save flag", "クレジットカード情報保存フラグ"),
    "209": ("security_code", "security code", "セキュリティコード"),
    "214": ("pay_info_control_type", "payment info control type", "決済情報使用特定タイプ"),
    "215": (
        "pay_info_detail_control_type",
        "payment method control type",
        "決済支払方法使用特定タイプ",
    ),
}
# Items only our integration sets: an error on them is ours to fix, not the shopper's.
_CONFIG_ITEMS = frozenset(
    {"000", "001", "002", "020", "023", "024", "025", "028", "030", "205", "214", "215"}
)
# The neutral request type's names (TokenCharge) for the items that have one.
_FIELDS = {"003": ("customer_id",), "004": ("order_id",), "007": ("tax",), "008": ("amount",)}
_ITEM_TYPES = {
    "03": ("missing_parameter", "is missing", "が指定されていません"),
    "04": ("invalid_characters", "has characters that are not allowed", "の文字種が不正です"),
    "05": ("invalid_length", "is too long or too short", "の桁数が不正です"),
    "06": ("invalid_format", "has a wrong format", "の形式が不正です"),
    "07": ("invalid_value", "has a value SBPS does not accept", "の値が定義外です"),
    "13": ("parameter_not_allowed", "may not be given here", "は指定できません"),
}


def _info(
    code: str, row: _Row, kind: ErrorKind | None = None, fields: tuple[str, ...] = ()
) -> GatewayErrorInfo:
    stable, status, retryable, en, ja = row
    return GatewayErrorInfo(
        code, stable, en, ja, retryable, status, kind or kind_for_status(status), fields
    )


def _item_info(code: str, type_: str, item: str) -> GatewayErrorInfo:
    stable, verb_en, verb_ja = _ITEM_TYPES[type_]
    name, label_en, label_ja = _ITEMS.get(item, ("", "a request value", "リクエスト項目"))
    where = f" ({name})" if name else ""
    status = MISCONFIGURED if item in _CONFIG_ITEMS else INVALID
    return _info(
        code,
        (
            stable,
            status,
            False,
            f"SBPS refused the request: the {label_en}{where} {verb_en}. {_CHECK_EN}",
            f"{label_ja}{where}{verb_ja}。{_CHECK_JA}",
        ),
        fields=_FIELDS.get(item, ()),
    )


_MAINTENANCE: _Row = (
    "maintenance",
    UNAVAILABLE,
    True,
    "The card company's system is under maintenance; nothing was charged. Please try again later.",
    "カード会社のシステムがメンテナンス中のため処理されませんでした(課金はされていません)。"
    "しばらくしてから再度お試しください。",
)
_NO_CARD: _Row = (
    "card_not_found",
    INVALID,
    False,
    "No card is registered for this customer at SBPS.",
    "この顧客のクレジットカード情報は登録されていません。",
)


def _generic(code: str) -> GatewayErrorInfo:
    shown = code or "no code"
    return _info(
        code,
        (
            "gateway_error",
            MISCONFIGURED,
            False,
            f"SBPS refused the request ({shown}).",
            f"決済システムでエラーが発生しました({code or 'コードなし'})。",
        ),
    )


def lookup(code: str) -> GatewayErrorInfo:
    """The entry for a raw code; an unknown one gets a generic entry naming it. Synthetic
    codes (timeout, connect_error, http_error, bad_response) are the shared table's."""
    if code.strip().lower() in SYNTHETIC_CODES:
        return shared.lookup(code.strip().lower())
    normalized = code.strip().upper()
    if normalized in MAINTENANCE_CODES:
        return _info(normalized, _MAINTENANCE)
    if normalized == NO_CARD_REGISTERED:
        return _info(normalized, _NO_CARD, ErrorKind.CARD_UNKNOWN)
    match = CODE.fullmatch(normalized)
    if match is None:
        return _generic(normalized)
    method, type_, item = match.groups()
    if type_ in _ITEM_TYPES:
        return _item_info(normalized, type_, item)
    if type_ in _COMMON:
        row = _COMMON[type_]
        kind = ErrorKind.UNKNOWN if type_ in UNKNOWN_TYPES else None
        return _info(normalized, row, kind)
    if method == CREDIT:
        return _credit(normalized, type_) or _generic(normalized)
    return _generic(normalized)


def _credit(code: str, type_: str) -> GatewayErrorInfo | None:
    if type_ in _DECLINES:
        stable, en, ja = _DECLINES[type_]
        return _info(code, (stable, DECLINE, False, en, ja))
    if type_ in _STATES:
        stable, en, ja, kind = _STATES[type_]
        return _info(code, (stable, CONFLICT, False, en, ja), kind)
    if type_ in _CREDIT_OTHER:
        row, kind = _CREDIT_OTHER[type_]
        fields = ("amount",) if type_ in ("79", "K1") else ()
        return _info(code, row, kind, fields)
    return None


# Types after which the request may have been processed: the lookup must settle them.
UNKNOWN_TYPES = frozenset({"80", "83", "84", "85", "86", "90", "92"})


def outcome_for(code: str) -> Outcome:
    """What an NG answer carrying `code` means for the money (failures without an answer,
    such as a timeout, are the client's to judge)."""
    normalized = code.strip().upper()
    if normalized in MAINTENANCE_CODES:
        return Outcome.UNAVAILABLE
    match = CODE.fullmatch(normalized)
    type_ = match.group(2) if match else ""
    # 96 on a re-send: the first one arrived, its result is what counts.
    if type_ in UNKNOWN_TYPES or type_ == "96":
        return Outcome.UNKNOWN
    if lookup(normalized).kind in (ErrorKind.DECLINED, ErrorKind.THREE_DS_FAILED):
        return Outcome.DECLINED
    return Outcome.FAILED
