"""Billing robo (請求管理ロボ) error codes as stable codes and readable messages.

Three families arrive in the same `{"error": {"code", "message"}}` body:
- the API's own codes for credit_card_token, 3401-3407 (seed 001), as integers, HTTP 400;
- the common codes of every billing-robo endpoint, 1 and 10-21 (research section 1.1), with
  HTTP 400, 401 (login id, access key, source IP) or 503 (maintenance, 19);
- the card gateway's codes (`ER584`, `G12`...), as strings, with HTTP 200: those reuse the
  ROBOT PAYMENT table so a reused token reads the same wherever it happens.
"""

from __future__ import annotations

from app.gateway import codes as rp
from app.gateway.base import ErrorKind, GatewayErrorInfo, Outcome, kind_for_status

INVALID, MISCONFIGURED, UNAVAILABLE, TOO_MANY = 422, 502, 503, 429

# Synthetic: still answered 429 after the bounded backoff.
RATE_LIMITED = "rate_limited"
MAINTENANCE = "19"

# (code, stable code, http status, retryable, English, Japanese)
_Row = tuple[str, str, int, bool, str, str]

_ROWS: list[_Row] = [
    # --- credit_card_token's own codes (seed 001) ------------------------------------------
    (
        "3401",
        "billing_code_invalid",
        INVALID,
        False,
        "The billing code (billing_code) is invalid or no payer has it in billing robo.",
        "請求先コードが不正です。",
    ),
    (
        "3402",
        "payment_method_number_invalid",
        INVALID,
        False,
        "The payment method number (billing_payment_method_number) is invalid or not "
        "registered on this payer.",
        "決済情報番号が不正です。",
    ),
    (
        "3403",
        "payment_method_code_invalid",
        INVALID,
        False,
        "The payment method code (billing_payment_method_code) is invalid or not registered "
        "on this payer.",
        "決済情報コードが不正です。",
    ),
    (
        "3404",
        "payment_method_ambiguous",
        INVALID,
        False,
        "Send either billing_payment_method_number or billing_payment_method_code, not both.",
        "請求先決済番号と請求先決済コードは同時に指定できません。",
    ),
    (
        "3405",
        "token_invalid",
        INVALID,
        False,
        "The card token is invalid. Please enter the card details again.",
        "トークン情報が不正です。もう一度カード情報を入力してください。",
    ),
    (
        "3406",
        "email_mismatch",
        INVALID,
        False,
        "The e-mail address does not match the one registered on the payer in billing robo.",
        "メールアドレスが請求先に登録されたものと一致しません。",
    ),
    (
        "3407",
        "tel_mismatch",
        INVALID,
        False,
        "The phone number does not match the one registered on the payer in billing robo "
        "(digits only, no hyphens).",
        "電話番号が請求先に登録されたものと一致しません(ハイフンなしの数字のみ)。",
    ),
    # --- common codes of every billing-robo endpoint --------------------------------------
    (
        "1",
        "billing_robo_internal_error",
        MISCONFIGURED,
        True,
        "Billing robo had an internal error. Please try again later.",
        "請求管理ロボで内部エラーが発生しました。しばらくしてから再度お試しください。",
    ),
    (
        "10",
        "billing_robo_unknown_uri",
        MISCONFIGURED,
        False,
        "Billing robo does not know the requested URL; check BILLING_ROBO_BASE_URL.",
        "請求管理ロボのURLが不正です。設定をご確認ください。",
    ),
    (
        "11",
        "billing_robo_bad_user_id",
        MISCONFIGURED,
        False,
        "Billing robo rejected the login id (BILLING_ROBO_USER_ID).",
        "請求管理ロボのユーザID(ログインID)が不正です。",
    ),
    (
        "12",
        "billing_robo_bad_access_key",
        MISCONFIGURED,
        False,
        "Billing robo rejected the access key (BILLING_ROBO_ACCESS_KEY).",
        "請求管理ロボのアクセスキーが不正です。",
    ),
    (
        "13",
        "source_ip_rejected",
        MISCONFIGURED,
        False,
        "Billing robo refused our server's IP address; allow the egress IP in billing robo's "
        "API settings.",
        "送信元IPアドレスが許可されていません。請求管理ロボでサーバーのIPアドレスを許可してください。",
    ),
    (
        "14",
        "shop_not_configured",
        MISCONFIGURED,
        False,
        "Billing robo rejected the shop id tied to this account. Contact ROBOT PAYMENT.",
        "店舗IDが不正です。ROBOT PAYMENTにお問い合わせください。",
    ),
    (
        "16",
        "billing_robo_login_failed",
        MISCONFIGURED,
        False,
        "Billing robo could not log in with the configured account.",
        "請求管理ロボへのログインに失敗しました。",
    ),
    (
        "17",
        "billing_robo_permission_denied",
        MISCONFIGURED,
        False,
        "The billing robo account has no permission for this API.",
        "請求管理ロボのアカウントにこのAPIの権限がありません。",
    ),
    (
        "18",
        "billing_robo_bad_company",
        MISCONFIGURED,
        False,
        "Billing robo rejected the company of this account.",
        "請求管理ロボの企業情報が不正です。",
    ),
    (
        MAINTENANCE,
        "maintenance",
        UNAVAILABLE,
        True,
        "Billing robo is under maintenance. Please try again later.",
        "請求管理ロボはメンテナンス中です。しばらくしてから再度お試しください。",
    ),
    (
        "20",
        RATE_LIMITED,
        TOO_MANY,
        True,
        "Billing robo's request limit (300 per 5 minutes) was reached; nothing was "
        "registered. Please try again in a few minutes.",
        "請求管理ロボのリクエスト数上限(5分間に300回)に達しました。登録されていません。"
        "数分後に再度お試しください。",
    ),
    (
        "21",
        "billing_robo_api_retired",
        MISCONFIGURED,
        False,
        "This billing robo API version has been retired.",
        "このバージョンの請求管理ロボAPIは廃止されました。",
    ),
]

# Which field of the request (BillingCardRegistration) a code is about.
_FIELDS: dict[str, tuple[str, ...]] = {
    "3401": ("billing_code",),
    "3402": ("payment_method_number",),
    "3403": ("payment_method_code",),
    "3404": ("payment_method_number", "payment_method_code"),
    "3405": ("token",),
    "3406": ("email",),
    "3407": ("tel",),
}

KNOWN_CODES: dict[str, GatewayErrorInfo] = {
    code: GatewayErrorInfo(
        code, stable, en, ja, retryable, status, kind_for_status(status), _FIELDS.get(code, ())
    )
    for code, stable, status, retryable, en, ja in _ROWS
}
# Same wording as code 20 (the limit), under our synthetic code.
KNOWN_CODES[RATE_LIMITED] = GatewayErrorInfo(
    RATE_LIMITED,
    RATE_LIMITED,
    KNOWN_CODES["20"].message_en,
    KNOWN_CODES["20"].message_ja,
    True,
    TOO_MANY,
    ErrorKind.RATE_LIMITED,
)


def normalize(code: object) -> str:
    """`3401`, `"3401"`, `" er584 "` -> `3401`, `ER584`."""
    return str(code).strip().upper()


def lookup(code: object) -> GatewayErrorInfo:
    """Our own row for a billing-robo code; gateway codes (ER…, G…) and synthetic ones
    (timeout...) go through the ROBOT PAYMENT table, which keeps unknown raw codes."""
    raw = str(code).strip()
    normalized = raw.upper()
    if raw in KNOWN_CODES or normalized in KNOWN_CODES:
        return KNOWN_CODES.get(raw) or KNOWN_CODES[normalized]
    if normalized.isdigit():
        return GatewayErrorInfo(
            normalized,
            "billing_robo_error",
            f"Billing robo refused the request (code {normalized}).",
            f"請求管理ロボでエラーが発生しました(コード {normalized})。",
            False,
            MISCONFIGURED,
            ErrorKind.MISCONFIGURED,
        )
    return rp.lookup(raw)


def outcome_for(code: object) -> Outcome:
    """What an answer carrying `code` means: never SUCCESS, and never UNKNOWN (an error body
    is an answer: the registration did not happen)."""
    normalized = normalize(code)
    if normalized in (MAINTENANCE, "20", RATE_LIMITED.upper()):
        return Outcome.UNAVAILABLE
    if normalized.isdigit():
        return Outcome.FAILED
    return rp.outcome_for(normalized)
