"""SBPS magic cards: the same numbers as the ROBOT PAYMENT simulator's (`app/sandbox/cards.py`),
so a person or a test picks an outcome the same way whichever provider runs; the answers are
SBPS's (8-character codes). Any other Luhn-valid number is approved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.sandbox import cards as rp_cards
from app.sandbox.sbps import codes

ThreeDS = Literal["frictionless", "challenge", "fail"]
Speed = Literal["normal", "slow", "timeout"]

CARD_OK = rp_cards.CARD_OK
CARD_DECLINE_G12 = rp_cards.CARD_DECLINE_G12
CARD_DECLINE_G55 = rp_cards.CARD_DECLINE_G55
CARD_DECLINE_G83 = rp_cards.CARD_DECLINE_G83
CARD_3DS_CHALLENGE = rp_cards.CARD_3DS_CHALLENGE
CARD_3DS_FAIL = rp_cards.CARD_3DS_FAIL
CARD_SLOW = rp_cards.CARD_SLOW
CARD_TIMEOUT = rp_cards.CARD_TIMEOUT
CHALLENGE_CODE = rp_cards.CHALLENGE_CODE


@dataclass(frozen=True)
class MagicCard:
    name: str
    number: str
    decline: str = ""  # the whole NG code of the authorization
    three_ds: ThreeDS = "frictionless"
    speed: Speed = "normal"
    outcome: str = ""


def _declined(type_: str, reason: str) -> str:
    return codes.code(type_, reason)


MAGIC_CARDS: dict[str, MagicCard] = {
    c.number: c
    for c in (
        MagicCard("CARD_OK", CARD_OK, outcome="approved; 3-D Secure frictionless"),
        MagicCard(
            "CARD_DECLINE_G12",
            CARD_DECLINE_G12,
            decline=_declined(codes.DECLINED_NOT_ACCEPTED, "G12"),
            outcome="declined 10126G12 (card not accepted)",
        ),
        MagicCard(
            "CARD_DECLINE_G55",
            CARD_DECLINE_G55,
            decline=_declined(codes.DECLINED_OVER_LIMIT, "G55"),
            outcome="declined 10122G55 (over the credit limit)",
        ),
        MagicCard(
            "CARD_DECLINE_G83",
            CARD_DECLINE_G83,
            decline=_declined(codes.DECLINED_NUMBER_OR_EXPIRY, "G83"),
            outcome="declined 10127G83 (expiry date)",
        ),
        MagicCard(
            "CARD_3DS_CHALLENGE",
            CARD_3DS_CHALLENGE,
            three_ds="challenge",
            outcome=f"3-D Secure challenge (code {CHALLENGE_CODE}); approved once passed",
        ),
        MagicCard(
            "CARD_3DS_FAIL",
            CARD_3DS_FAIL,
            three_ds="fail",
            outcome="3-D Secure fails: back to ng_return_url, ST01-00118-101 answers 101D1999",
        ),
        MagicCard("CARD_SLOW", CARD_SLOW, speed="slow", outcome="approved after slow_seconds"),
        MagicCard(
            "CARD_TIMEOUT",
            CARD_TIMEOUT,
            speed="timeout",
            outcome="authorized, then the answer hangs hang_seconds",
        ),
    )
}
_ALL = tuple(MAGIC_CARDS.values())
_ANY = MagicCard("ANY", "", outcome="approved")


def lookup(number: str) -> MagicCard:
    return MAGIC_CARDS.get(number, _ANY)


def describe() -> list[dict[str, str]]:
    return [{"name": c.name, "number": c.number, "outcome": c.outcome} for c in _ALL]


def brand(number: str) -> str:
    """Seed 004's cardBrandCode: J JCB, V Visa, M Master, A AMEX, D Diners, X other."""
    two, four = int(number[:2] or 0), int(number[:4] or 0)
    if number.startswith("4"):
        return "V"
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return "M"
    if 3528 <= four <= 3589:
        return "J"
    if two in (34, 37):
        return "A"
    if two in (30, 36, 38, 39):
        return "D"
    return "X"


# cc_company_code per brand (ours: the real codes name the issuing company, not public here).
COMPANY_CODES = {"V": "00100", "M": "00200", "J": "00300", "A": "00400", "D": "00500", "X": "00900"}


def luhn_valid(number: str) -> bool:
    return rp_cards.luhn_valid(number)


def masked(number: str) -> str:
    return "*" * (len(number) - 4) + number[-4:]
