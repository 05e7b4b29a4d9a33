"""Every ROBOT PAYMENT error code we know, as a stable code and readable messages.

Shared by the card gateway client (app/gateway/robotpayment) and billing robo's (which answers
with the card gateway's codes for the token and 3-D Secure), hence here and not in either.

Sources: seed 000 p.26, seeds 002/003, and research/gateway-notes.md section 1.4. `ER` codes
are raised by the gateway before the card company is asked; `G` codes are card-company
declines (the common CAFIS codes). `retryable` means the very same request may succeed later;
`http_status` is what our own API should answer.
"""

from __future__ import annotations

import re

from app.gateway.base import ErrorKind, GatewayErrorInfo, Outcome, kind_for_status

DECLINE, INVALID, CONFLICT, MISCONFIGURED, UNAVAILABLE, TIMEOUT = 402, 422, 409, 502, 503, 504

# Synthetic codes for failures that never produced a gateway answer.
TIMEOUT_CODE = "timeout"
CONNECT_ERROR = "connect_error"
HTTP_ERROR = "http_error"
BAD_RESPONSE = "bad_response"

_DECLINE_CODE = re.compile(r"G[0-9]+|ER90[0-5]")
_PARAMETER_CODE = re.compile(r"ER0[5-7][0-9]")

# (codes, stable code, http status, retryable, English, Japanese)
_Row = tuple[tuple[str, ...], str, int, bool, str, str]

_SHOPPER_RETRY_EN = "Please check the card details or use another card."
_SHOPPER_RETRY_JA = "カード情報をご確認いただくか、別のカードをご利用ください。"
_DECLINED_EN = "This card cannot be used. Please use another card or contact the card issuer."
_DECLINED_JA = (
    "このカードはご利用いただけません。"
    "別のカードをご利用いただくか、カード会社にお問い合わせください。"
)

_GATEWAY_ROWS: list[_Row] = [
    (
        ("ER000",),
        "gateway_internal_error",
        MISCONFIGURED,
        True,
        "The payment gateway had an internal error. Please try again later.",
        "決済システムで内部エラーが発生しました。しばらくしてから再度お試しください。",
    ),
    (
        ("ER001",),
        "invalid_request",
        MISCONFIGURED,
        False,
        "The payment gateway rejected the request (request error). Check the integration; "
        "with connection authentication on, check GATEWAY_CONNECTION_AUTH_CODE and this "
        "server's clock.",
        "決済システムがリクエストを受け付けませんでした(リクエストエラー)。"
        "連携設定をご確認ください。接続認証をご利用の場合は、接続認証コードと"
        "サーバーの時刻をご確認ください。",
    ),
    (
        ("ER002",),
        "referer_rejected",
        MISCONFIGURED,
        False,
        "The payment page's origin is not registered at the gateway (決済データ送信元URL).",
        "決済ページのURLが決済システムに登録されていません(決済データ送信元URLをご確認ください)。",
    ),
    (
        ("ER003",),
        "source_ip_rejected",
        MISCONFIGURED,
        False,
        "The gateway refused our server's IP address; register the egress IP as "
        "決済データ送信元IP in the gateway control panel.",
        "送信元IPアドレスが許可されていません。管理画面の「決済データ送信元IP」に"
        "サーバーのIPアドレスを登録してください。",
    ),
    (
        ("ER004", "ER114", "ER117", "ER119", "ER554", "ER559"),
        "shop_not_configured",
        MISCONFIGURED,
        False,
        "The shop (aid) is unknown or not fully set up at the gateway. Contact ROBOT PAYMENT.",
        "店舗IDが不正、または決済システム側の店舗設定が完了していません。"
        "ROBOT PAYMENTにお問い合わせください。",
    ),
    (
        ("ER005",),
        "unknown_item",
        INVALID,
        False,
        "The item code (iid) is not registered at the gateway.",
        "指定された商品コード(iid)は決済システムに登録されていません。",
    ),
    (
        ("ER010",),
        "gateway_busy",
        UNAVAILABLE,
        True,
        "The payment gateway is busy. Please try again in a few minutes.",
        "決済システムが混雑しています。しばらくしてから再度お試しください。",
    ),
    (
        ("ER013",),
        "card_not_accepted",
        DECLINE,
        False,
        "This card cannot be used at this shop. Please use another card.",
        "このカードは当店ではご利用いただけません。別のカードをご利用ください。",
    ),
    (
        ("ER014",),
        "invalid_card_number",
        INVALID,
        False,
        "The card number is not valid. " + _SHOPPER_RETRY_EN,
        "カード番号が正しくありません。" + _SHOPPER_RETRY_JA,
    ),
    (
        ("ER015",),
        "card_brand_not_accepted",
        DECLINE,
        False,
        "This card brand is not accepted. Please use another card.",
        "このカードブランドはご利用いただけません。別のカードをご利用ください。",
    ),
    (
        ("ER016", "ER017", "ER018"),
        "amount_limit_exceeded",
        INVALID,
        False,
        "The amount is outside the limits allowed for this shop.",
        "決済金額が店舗の上限・下限の範囲外です。",
    ),
    (
        ("ER021",),
        "onetouch_rejected",
        INVALID,
        False,
        "The stored-card payment conditions are not met (one-touch condition error).",
        "登録カードでの決済条件を満たしていません(ワンタッチ条件エラー)。",
    ),
    (
        ("ER024",),
        "subscription_stopped",
        CONFLICT,
        False,
        "The recurring billing has already been stopped.",
        "自動課金はすでに停止されています。",
    ),
    (
        ("ER030",),
        "processing_failed",
        MISCONFIGURED,
        False,
        "The payment gateway could not process the request.",
        "決済システムで処理できませんでした。",
    ),
    (
        ("ER031",),
        "card_check_failed",
        DECLINE,
        False,
        "The card did not pass the validity check. " + _SHOPPER_RETRY_EN,
        "カードの有効性チェックに失敗しました。" + _SHOPPER_RETRY_JA,
    ),
    (
        ("ER032",),
        "already_captured",
        CONFLICT,
        False,
        "The gateway refused the capture, usually because the payment is already captured "
        "(or canceled, or older than 90 days). Confirm its status before acting.",
        "実売上処理ができませんでした。すでに実売上済み(または取消済み・仮売上から90日超過)の"
        "可能性があります。決済状況をご確認ください。",
    ),
    (
        ("ER033",),
        "cancel_rejected",
        CONFLICT,
        False,
        "The gateway refused the cancellation (already canceled or not cancelable). "
        "Confirm the payment's status.",
        "取消処理ができませんでした(取消済み、または取消できない決済です)。"
        "決済状況をご確認ください。",
    ),
    (
        ("ER042",),
        "gateway_communication_error",
        UNAVAILABLE,
        True,
        "The gateway could not reach the card company. Please try again later.",
        "カード会社との通信でエラーが発生しました。しばらくしてから再度お試しください。",
    ),
    (
        ("ER107",),
        "invalid_request_method",
        MISCONFIGURED,
        False,
        "The gateway rejected the HTTP request method.",
        "リクエストメソッドが不正です。",
    ),
    (
        ("ER125", "ER126", "ER127", "ER128", "ER129"),
        "invalid_parameter",
        INVALID,
        False,
        "A recurring-billing parameter was rejected by the gateway.",
        "自動課金のパラメータが不正です。",
    ),
    (
        ("ER147",),
        "customer_not_found",
        INVALID,
        False,
        "The customer id (uid) is not registered at the gateway or is invalid.",
        "ユーザーID(uid)が決済システムに登録されていないか、不正です。",
    ),
    (
        ("ER148",),
        "invalid_customer_key",
        INVALID,
        False,
        "The customer key does not match the customer registered at the gateway.",
        "発行ID(key)がユーザーと一致しません。",
    ),
    (
        ("ER149",),
        "card_not_found",
        INVALID,
        False,
        "No card with this number (num) is registered for the customer.",
        "指定されたカード登録連番(num)のカードは登録されていません。",
    ),
    (
        ("ER150",),
        "invalid_parameter",
        INVALID,
        False,
        "The gateway rejected the parameter cvvf.",
        "パラメータcvvfが不正です。",
    ),
    (
        ("ER564",),
        "card_payments_not_enabled",
        MISCONFIGURED,
        False,
        "Credit card payments are not enabled for this shop at the gateway.",
        "この店舗ではクレジットカード決済が利用できない設定になっています。",
    ),
    (
        ("ER565", "ER567"),
        "contact_gateway_support",
        MISCONFIGURED,
        False,
        "The gateway refused the request; ROBOT PAYMENT support must check the shop settings.",
        "恐れ入りますが、ROBOT PAYMENTのサポートセンターまでご連絡ください。",
    ),
    (
        ("ER583",),
        "token_missing",
        INVALID,
        False,
        "No card token was sent. Please enter the card details again.",
        "カードのトークンが送信されていません。もう一度カード情報を入力してください。",
    ),
    (
        ("ER584",),
        "token_invalid",
        INVALID,
        False,
        "The card token is invalid or was already used. Please enter the card details again.",
        "カードのトークンが無効か、使用済みです。もう一度カード情報を入力してください。",
    ),
    (
        ("ER585",),
        "token_expired",
        INVALID,
        False,
        "The card token has expired (15 minutes). Please enter the card details again.",
        "カードのトークンの有効期限(15分)が切れました。もう一度カード情報を入力してください。",
    ),
    (
        ("ER586",),
        "card_data_with_token",
        INVALID,
        False,
        "Card data was sent together with a token; send the token only.",
        "トークンとカード情報が同時に送信されました。トークンのみを送信してください。",
    ),
    (
        ("ER590",),
        "onetouch_not_enabled",
        MISCONFIGURED,
        False,
        "Stored-card (one-touch) payments are not enabled for this shop.",
        "この店舗ではワンタッチ決済が利用できない設定になっています。",
    ),
    (
        ("ER651",),
        "card_list_error",
        CONFLICT,
        False,
        "The customer's card list could not be retrieved.",
        "ユーザーの登録カード一覧を取得できませんでした。",
    ),
    (
        ("ER652",),
        "duplicate_customer",
        CONFLICT,
        False,
        "A customer with this id (uid) is already registered at the gateway.",
        "このユーザーID(uid)はすでに登録されています。",
    ),
    (
        ("ER653",),
        "customer_deleted",
        CONFLICT,
        False,
        "This customer has been deleted at the gateway.",
        "このユーザーはすでに削除されています。",
    ),
    (
        ("ER654",),
        "card_registration_not_enabled",
        MISCONFIGURED,
        False,
        "Card registration (cmd=4) is not enabled for this shop.",
        "この店舗ではカード情報登録(cmd=4)が利用できない設定になっています。",
    ),
    (
        ("ER655",),
        "customer_unavailable",
        CONFLICT,
        False,
        "This customer cannot be used at the gateway.",
        "指定されたユーザーは利用できません。",
    ),
    (
        ("ER656",),
        "card_unavailable",
        CONFLICT,
        False,
        "This stored card cannot be used. Please register the card again or use another one.",
        "指定された登録カードは利用できません。カードを再登録するか、別のカードをご利用ください。",
    ),
    (
        ("ER900", "ER901", "ER902", "ER903", "ER904", "ER905"),
        "three_ds_failed",
        DECLINE,
        False,
        "3-D Secure authentication failed or was not completed. Please try again or use "
        "another card.",
        "本人認証(3Dセキュア)に失敗したか、完了しませんでした。もう一度お試しいただくか、"
        "別のカードをご利用ください。",
    ),
    (
        ("ER998",),
        "account_suspended",
        MISCONFIGURED,
        False,
        "The shop's gateway account is suspended. Contact ROBOT PAYMENT.",
        "店舗アカウントが停止されています。ROBOT PAYMENTにお問い合わせください。",
    ),
    (
        ("ER999",),
        "maintenance",
        UNAVAILABLE,
        True,
        "The payment gateway is under maintenance. Please try again later.",
        "決済システムはメンテナンス中です。しばらくしてから再度お試しください。",
    ),
    # Charges search API (seed 003).
    (
        ("ER400",),
        "search_invalid_request",
        MISCONFIGURED,
        False,
        "The charges search rejected its parameters.",
        "決済情報検索のリクエストパラメータが不正です。",
    ),
    (
        ("ER401",),
        "search_auth_failed",
        MISCONFIGURED,
        False,
        "The charges search rejected the API key (X-Payment-API-Key).",
        "決済情報検索のAPIキーが認証されませんでした。APIキーをご確認ください。",
    ),
    (
        ("ER500",),
        "search_internal_error",
        UNAVAILABLE,
        True,
        "The charges search had an internal error. Please try again later.",
        "決済情報検索で内部エラーが発生しました。しばらくしてから再度お試しください。",
    ),
    (
        ("ER520",),
        "search_too_many_results",
        INVALID,
        False,
        "The charges search matched too many payments; narrow the conditions.",
        "検索対象のデータが多すぎます。検索条件を見直してください。",
    ),
]

# Parameter errors ER050..ER079: (field, English label, Japanese label, stable code).
_PARAMETERS: dict[str, tuple[str, str, str, str]] = {
    "ER050": ("aid", "shop id", "店舗ID", "invalid_parameter"),
    "ER051": ("jb", "job type", "ジョブタイプ", "invalid_parameter"),
    "ER052": ("rt", "result mode", "決済結果返却形式", "invalid_parameter"),
    "ER053": ("tid", "payment number", "対象決済番号", "invalid_parameter"),
    "ER054": ("cod", "order number", "店舗オーダー番号", "invalid_parameter"),
    "ER055": ("cn", "card number", "カード番号", "invalid_card_number"),
    "ER056": ("ed", "expiry date", "有効期限", "invalid_expiry"),
    "ER057": ("fn", "card holder first name", "カード名義(名)", "invalid_card_holder"),
    "ER058": ("ln", "card holder last name", "カード名義(姓)", "invalid_card_holder"),
    "ER059": ("em", "email address", "メールアドレス", "invalid_email"),
    "ER060": ("pn", "phone number", "電話番号", "invalid_phone"),
    "ER061": ("am", "amount", "商品金額", "invalid_amount"),
    "ER062": ("tx", "tax", "税額", "invalid_amount"),
    "ER063": ("sf", "shipping fee", "送料", "invalid_amount"),
    "ER064": ("md", "payment method", "支払方法", "invalid_payment_method"),
    "ER065": ("pt", "number of installments", "分割回数", "invalid_payment_method"),
    "ER066": ("iid", "item code", "商品コード", "invalid_parameter"),
    "ER069": ("cmd", "command", "送信タイプ", "invalid_parameter"),
    "ER079": ("cvv", "security code", "セキュリティコード", "invalid_cvv"),
}

# Card-company declines: (codes, stable code, http status, retryable, English, Japanese).
_CARD_COMPANY_ROWS: list[_Row] = [
    (
        ("G02", "G04", "G06"),
        "insufficient_funds",
        DECLINE,
        False,
        "The card was declined for insufficient balance. Please use another card.",
        "残高不足のためカードが承認されませんでした。別のカードをご利用ください。",
    ),
    (
        ("G03", "G05", "G07", "G55"),
        "insufficient_limit",
        DECLINE,
        False,
        "The card's credit limit would be exceeded. Please use another card or contact the "
        "card issuer.",
        "ご利用限度額を超えています。"
        "別のカードをご利用いただくか、カード会社にお問い合わせください。",
    ),
    (
        ("G12", "G22", "G54", "G56", "G60", "G61", "G92", "G96", "G97", "G98", "G99"),
        "card_declined",
        DECLINE,
        False,
        _DECLINED_EN,
        _DECLINED_JA,
    ),
    (
        ("G30",),
        "call_issuer",
        DECLINE,
        False,
        "The card company put this payment on hold. Please contact the card issuer or use "
        "another card.",
        "カード会社で取引が保留されました。"
        "カード会社にお問い合わせいただくか、別のカードをご利用ください。",
    ),
    (
        ("G42", "G43"),
        "incorrect_pin",
        DECLINE,
        False,
        "The card's PIN was incorrect. " + _SHOPPER_RETRY_EN,
        "暗証番号が正しくありません。" + _SHOPPER_RETRY_JA,
    ),
    (
        ("G44",),
        "incorrect_cvv",
        DECLINE,
        False,
        "The security code (CVV) is incorrect. " + _SHOPPER_RETRY_EN,
        "セキュリティコードが正しくありません。" + _SHOPPER_RETRY_JA,
    ),
    (
        ("G45",),
        "missing_cvv",
        DECLINE,
        False,
        "The security code (CVV) is required. Please enter it and try again.",
        "セキュリティコードが入力されていません。入力のうえ再度お試しください。",
    ),
    (
        ("G65",),
        "invalid_card_number",
        DECLINE,
        False,
        "The card number is incorrect. " + _SHOPPER_RETRY_EN,
        "カード番号が正しくありません。" + _SHOPPER_RETRY_JA,
    ),
    (
        ("G68", "G69"),
        "invalid_amount",
        DECLINE,
        False,
        "The card company refused the amount. Please contact the shop.",
        "カード会社で金額が承認されませんでした。ショップにお問い合わせください。",
    ),
    (
        ("G70", "G71", "G72", "G73", "G74", "G75", "G76", "G78"),
        "invalid_payment_method",
        DECLINE,
        False,
        "The card does not allow this payment method (installments, bonus or revolving). "
        "Please choose lump-sum payment or another card.",
        "このカードでは指定の支払方法(分割・ボーナス・リボ払い)をご利用いただけません。"
        "一括払いまたは別のカードをご利用ください。",
    ),
    (
        ("G77", "G79", "G80", "G81", "G84", "G94"),
        "card_company_error",
        DECLINE,
        False,
        "The card company rejected the request. Please use another card or contact the shop.",
        "カード会社でエラーが発生しました。"
        "別のカードをご利用いただくか、ショップにお問い合わせください。",
    ),
    (
        ("G83",),
        "card_expired",
        DECLINE,
        False,
        "The card has expired or the expiry date is wrong. " + _SHOPPER_RETRY_EN,
        "カードの有効期限が切れているか、有効期限が正しくありません。" + _SHOPPER_RETRY_JA,
    ),
    (
        ("G85", "G95"),
        "card_company_unavailable",
        UNAVAILABLE,
        True,
        "The card company cannot process payments right now. Please try again later.",
        "カード会社が現在取引を受け付けていません。しばらくしてから再度お試しください。",
    ),
]

_SYNTHETIC: dict[str, GatewayErrorInfo] = {
    TIMEOUT_CODE: GatewayErrorInfo(
        TIMEOUT_CODE,
        "gateway_timeout",
        "The payment gateway did not answer in time. The result is not known yet and will "
        "be confirmed automatically; do not pay again.",
        "決済システムから時間内に応答がありませんでした。結果は確認中です。二重決済を防ぐため、"
        "再度のお支払いはお控えください。",
        False,
        TIMEOUT,
        ErrorKind.TIMEOUT,
    ),
    CONNECT_ERROR: GatewayErrorInfo(
        CONNECT_ERROR,
        "gateway_unavailable",
        "The payment gateway could not be reached; nothing was charged. Please try again later.",
        "決済システムに接続できませんでした(課金はされていません)。"
        "しばらくしてから再度お試しください。",
        True,
        UNAVAILABLE,
        ErrorKind.UNAVAILABLE,
    ),
    HTTP_ERROR: GatewayErrorInfo(
        HTTP_ERROR,
        "gateway_http_error",
        "The payment gateway answered with an HTTP error. The result will be confirmed "
        "automatically if it may have been processed.",
        "決済システムがHTTPエラーを返しました。処理された可能性がある場合は自動で確認します。",
        False,
        MISCONFIGURED,
        ErrorKind.UNKNOWN,
    ),
    BAD_RESPONSE: GatewayErrorInfo(
        BAD_RESPONSE,
        "gateway_bad_response",
        "The payment gateway's answer could not be read. The result will be confirmed "
        "automatically if it may have been processed.",
        "決済システムの応答を読み取れませんでした。処理された可能性がある場合は自動で確認します。",
        False,
        MISCONFIGURED,
        ErrorKind.UNKNOWN,
    ),
}


# The domain's meaning of the codes it branches on; every other code's kind follows from the
# HTTP status we answer with (base.kind_for_status: 402 declined, 409 conflict, 422 invalid...).
_KINDS: dict[str, ErrorKind] = {
    **dict.fromkeys(("ER583", "ER584", "ER585", "ER586"), ErrorKind.TOKEN_INVALID),
    # ER900-ER902: the 3-D Secure run on the token failed (the card must be entered again).
    # ER903-ER905 share the stable code three_ds_failed but stay plain declines, as the
    # domain always treated them.
    **dict.fromkeys(("ER900", "ER901", "ER902"), ErrorKind.THREE_DS_FAILED),
    "ER147": ErrorKind.CUSTOMER_UNKNOWN,
    "ER149": ErrorKind.CARD_UNKNOWN,
    "ER652": ErrorKind.CUSTOMER_EXISTS,
    "ER653": ErrorKind.CUSTOMER_DELETED,
    # "Already captured / canceled" may only mean our view is stale: the search confirms.
    "ER032": ErrorKind.STALE_VIEW,
    "ER033": ErrorKind.STALE_VIEW,
    # Seed 003: 54,000 rows or more; only a narrower search can help.
    "ER520": ErrorKind.TOO_MANY_RESULTS,
}


def _info(
    code: str, stable: str, en: str, ja: str, retryable: bool, status: int
) -> GatewayErrorInfo:
    kind = _KINDS.get(code, kind_for_status(status))
    return GatewayErrorInfo(code, stable, en, ja, retryable, status, kind)


def _build() -> dict[str, GatewayErrorInfo]:
    table: dict[str, GatewayErrorInfo] = dict(_SYNTHETIC)
    for codes, stable, status, retryable, en, ja in _GATEWAY_ROWS + _CARD_COMPANY_ROWS:
        for code in codes:
            table[code] = _info(code, stable, en, ja, retryable, status)
    for code, (name, label_en, label_ja, stable) in _PARAMETERS.items():
        table[code] = _info(
            code,
            stable,
            f"The gateway rejected the {label_en} ({name}). Please check it and try again.",
            f"{label_ja}({name})の値が正しくありません。ご確認のうえ再度お試しください。",
            False,
            INVALID,
        )
    return table


KNOWN_CODES: dict[str, GatewayErrorInfo] = _build()


def _generic(code: str) -> GatewayErrorInfo:
    """An entry for a code we have no row for, keeping the raw code."""
    if is_decline(code):
        return _info(code, "card_declined", _DECLINED_EN, _DECLINED_JA, False, DECLINE)
    if _PARAMETER_CODE.fullmatch(code):
        return _info(
            code,
            "invalid_parameter",
            f"The gateway rejected a request parameter ({code}).",
            f"リクエストパラメータが不正です({code})。",
            False,
            INVALID,
        )
    return _info(
        code,
        "gateway_error",
        f"The payment gateway refused the request ({code or 'no code'}).",
        f"決済システムでエラーが発生しました({code or 'コードなし'})。",
        False,
        MISCONFIGURED,
    )


def lookup(code: str) -> GatewayErrorInfo:
    """The entry for `code`; unknown codes get a generic one that keeps the raw code."""
    normalized = code.strip()
    upper = normalized.upper()
    return KNOWN_CODES.get(normalized) or KNOWN_CODES.get(upper) or _generic(upper)


def is_decline(code: str) -> bool:
    """Card-company (G) and 3-D Secure (ER900-ER905) refusals: definitively not charged."""
    return _DECLINE_CODE.fullmatch(code.strip().upper()) is not None


def outcome_for(code: str) -> Outcome:
    """The outcome of an answer that carried error `code` (rst=2 or a bare code)."""
    upper = code.strip().upper()
    if upper == "ER999":
        return Outcome.UNAVAILABLE
    return Outcome.DECLINED if is_decline(upper) else Outcome.FAILED
