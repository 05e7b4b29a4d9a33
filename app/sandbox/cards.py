"""Magic test cards: the card number alone decides the simulator's answer, so a test (or a person
at the demo checkout) can pick any outcome. All are Luhn-valid 16-digit Visa numbers; any other
Luhn-valid number behaves like CARD_OK.

Each card also has a magic token (`tok_approved`, ...; Stripe's `tok_visa` idea): a token of that
card whose 3-D Secure already ran, usable from curl any number of times with any amounts, where
a browser would have to run CPToken.js and EMV3DSAdapter.js. Only the simulator knows them, so
they exist only in sandbox mode."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ThreeDSMode = Literal["frictionless", "challenge", "fail"]
Speed = Literal["normal", "slow", "timeout"]

CARD_OK = "4444333322221111"
CARD_DECLINE_G12 = "4000000000000127"
CARD_DECLINE_G55 = "4000000000000556"
CARD_DECLINE_G83 = "4000000000000838"
CARD_3DS_CHALLENGE = "4000000000000317"
CARD_3DS_FAIL = "4000000000000390"
CARD_SLOW = "4000000000000705"
CARD_TIMEOUT = "4000000000000804"

# The one-time code the sandbox 3-D Secure challenge accepts (shown in the challenge modal).
CHALLENGE_CODE = "1234"


@dataclass(frozen=True)
class MagicCard:
    name: str
    number: str
    decline: str | None = None  # card-company (G) code when the charge is declined
    three_ds: ThreeDSMode = "frictionless"
    speed: Speed = "normal"
    outcome_en: str = ""
    outcome_ja: str = ""
    token: str = ""  # the magic token standing for this card after its 3-D Secure
    token_outcome: str = ""  # what a payment with the token does


MAGIC_CARDS: dict[str, MagicCard] = {
    c.number: c
    for c in (
        MagicCard(
            "CARD_OK",
            CARD_OK,
            outcome_en="approved, frictionless 3-D Secure",
            outcome_ja="承認（3Dセキュア認証はフリクションレス）",
            token="tok_approved",
            token_outcome="approved",
        ),
        MagicCard(
            "CARD_DECLINE_G12",
            CARD_DECLINE_G12,
            decline="G12",
            outcome_en="declined G12 (card not accepted)",
            outcome_ja="G12 取扱不可で拒否",
            token="tok_declined_g12",
            token_outcome="declined G12 (card not accepted)",
        ),
        MagicCard(
            "CARD_DECLINE_G55",
            CARD_DECLINE_G55,
            decline="G55",
            outcome_en="declined G55 (over the credit limit)",
            outcome_ja="G55 限度額オーバーで拒否",
            token="tok_declined_g55",
            token_outcome="declined G55 (over the credit limit)",
        ),
        MagicCard(
            "CARD_DECLINE_G83",
            CARD_DECLINE_G83,
            decline="G83",
            outcome_en="declined G83 (expiry date)",
            outcome_ja="G83 有効期限エラーで拒否",
            token="tok_declined_g83",
            token_outcome="declined G83 (expiry date)",
        ),
        MagicCard(
            "CARD_3DS_CHALLENGE",
            CARD_3DS_CHALLENGE,
            three_ds="challenge",
            outcome_en=f"3-D Secure challenge (code {CHALLENGE_CODE}); approved if completed",
            outcome_ja=f"3Dセキュアのチャレンジ認証（コード {CHALLENGE_CODE}）。完了すれば承認",
            token="tok_3ds_challenge",
            token_outcome="approved (the shopper passed a 3-D Secure challenge)",
        ),
        MagicCard(
            "CARD_3DS_FAIL",
            CARD_3DS_FAIL,
            three_ds="fail",
            outcome_en="3-D Secure authentication fails: payment answers ER900",
            outcome_ja="3Dセキュア認証失敗（決済は ER900）",
            token="tok_3ds_failed",
            token_outcome="3-D Secure failed: ER900, nothing charged",
        ),
        MagicCard(
            "CARD_SLOW",
            CARD_SLOW,
            speed="slow",
            outcome_en="approved after a slow answer (a few seconds)",
            outcome_ja="応答が遅い（数秒後に承認）",
            token="tok_slow",
            token_outcome="approved after a slow answer (a few seconds)",
        ),
        MagicCard(
            "CARD_TIMEOUT",
            CARD_TIMEOUT,
            speed="timeout",
            outcome_en="charged, but the answer never comes: the payment is unknown until "
            "reconciliation settles it",
            outcome_ja="決済は成立するが応答が返らない（照合で確定するまで「不明」）",
            token="tok_timeout",
            token_outcome="charged, the answer never comes: 202 unknown, settled by reconciliation",
        ),
    )
}

_DEFAULT = MagicCard("ANY", "", outcome_en="approved", outcome_ja="承認")


MAGIC_TOKENS: dict[str, MagicCard] = {c.token: c for c in MAGIC_CARDS.values()}


def lookup(number: str) -> MagicCard:
    return MAGIC_CARDS.get(number, _DEFAULT)


def by_token(value: str) -> MagicCard | None:
    return MAGIC_TOKENS.get(value)


def describe() -> list[dict[str, str]]:
    """Rows for documentation and the demo shop: name, number, outcome (en/ja), magic token."""
    return [
        {
            "name": c.name,
            "number": c.number,
            "outcome": c.outcome_en,
            "outcome_ja": c.outcome_ja,
            "token": c.token,
            "token_outcome": c.token_outcome,
        }
        for c in MAGIC_CARDS.values()
    ]


def luhn_valid(number: str) -> bool:
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        digit = int(ch)
        if i % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def brand_code(number: str) -> int:
    """The search API's `ct`: 1 Visa, 2 Master, 3 JCB, 4 Amex, 5 Diners, 6 Discover, 0 other."""
    if number.startswith("4"):
        return 1
    two, four = int(number[:2] or 0), int(number[:4] or 0)
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return 2
    if two == 35:
        return 3
    if two in (34, 37):
        return 4
    if two in (30, 36, 38, 39):
        return 5
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return 6
    return 0
