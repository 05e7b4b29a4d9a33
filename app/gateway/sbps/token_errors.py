"""The one-time token JavaScript's error codes (seed 004, エラーコード一覧), for the page.

5 characters: 2 for the type (03 required, 04 attribute, 05 length, 07 defined value,
99 system error), 3 for the item (001 merchant id, 002 service id, 003 card number, 004
expiry, 005 security code, 999 none). The shopper reads these, so the messages say what to
fix; the merchant and service ids are the shop's set-up, not the shopper's doing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CODE = re.compile(r"(0[3457]|99)([0-9]{3})")
TYPES = ("03", "04", "05", "07", "99")
ITEMS = ("001", "002", "003", "004", "005", "999")


@dataclass(frozen=True, slots=True)
class TokenErrorMessage:
    code: str
    message_ja: str
    message_en: str
    shopper_fixable: bool  # the shopper can fix it by entering the card again


# (Japanese, English) names of the items the shopper enters.
_CARD_ITEMS = {
    "003": ("カード番号", "card number"),
    "004": ("有効期限", "expiry date"),
    "005": ("セキュリティコード", "security code"),
}
# (Japanese predicate, English predicate) per type, for a card item.
_CARD_TYPES = {
    "03": ("を入力してください。", "Please enter the {}."),
    "04": (
        "に使用できない文字が含まれています。半角数字で入力してください。",
        "The {} contains characters that are not allowed; please use digits only.",
    ),
    "05": ("の桁数が正しくありません。", "The {} has the wrong number of digits."),
    "07": ("が正しくありません。ご確認ください。", "The {} is not valid; please check it."),
}
_SETUP = TokenErrorMessage(
    "",
    "決済の設定に誤りがあるため、カード情報を送信できません。ショップにお問い合わせください。",
    "The card details cannot be sent because of a set-up problem; please contact the shop.",
    False,
)
_SYSTEM = TokenErrorMessage(
    "",
    "カード情報の確認中にエラーが発生しました。しばらくしてから再度お試しください。",
    "An error occurred while checking the card details. Please try again later.",
    False,
)
_CHECK = TokenErrorMessage(
    "",
    "カード情報をご確認のうえ、もう一度入力してください。",
    "Please check the card details and enter them again.",
    True,
)


def message_for(code: str) -> TokenErrorMessage:
    """The page's message for a token error code; an unknown code gets a safe generic one
    naming it (never raises)."""
    normalized = code.strip()
    match = CODE.fullmatch(normalized)
    if match is None:
        return TokenErrorMessage(
            normalized,
            f"カード情報を確認できませんでした(エラーコード {normalized or 'なし'})。"
            "もう一度入力してください。",
            f"The card details could not be checked (error code {normalized or 'none'}). "
            "Please enter them again.",
            True,
        )
    type_, item = match.groups()
    if type_ == "99":
        base = _SYSTEM
    elif item in ("001", "002"):
        base = _SETUP
    elif item in _CARD_ITEMS:
        label_ja, label_en = _CARD_ITEMS[item]
        predicate_ja, predicate_en = _CARD_TYPES[type_]
        sentence_en = predicate_en.format(label_en)
        return TokenErrorMessage(
            normalized, label_ja + predicate_ja, sentence_en[0].upper() + sentence_en[1:], True
        )
    else:
        base = _CHECK
    return TokenErrorMessage(normalized, base.message_ja, base.message_en, base.shopper_fixable)


# Every code seed 004's table can form, with its message (for the page's lookup table).
KNOWN_CODES: dict[str, TokenErrorMessage] = {
    t + i: message_for(t + i) for t in TYPES for i in ITEMS
}
