"""How the shopper's pages show a saved card: the one rule, used by the templates (the
`card_label` and `card_brand` filters) and by the card page's result message.

The stored value stays what the gateway returned (e.g. "************0317"); a page shows
"•••• 0317" (four bullets, a space, the last four digits) and the brand's mark."""

from __future__ import annotations

import re

BULLETS = "\u2022" * 4
# The marks under static/checkout/brands/ (<brand>.svg), the accepted brands first, in the
# order the page shows them; "generic" is any other card, or one whose brand is unknown.
ACCEPTED_BRANDS = ("visa", "mastercard", "jcb", "amex", "diners")
GENERIC = "generic"
# The brand from a number's first digits: the same prefixes as brandOf() in
# static/checkout/checkout.js (which names the brand while the number is typed).
_PREFIXES = (
    ("amex", re.compile(r"3[47]")),
    ("diners", re.compile(r"3(0[0-5]|[689])")),
    ("jcb", re.compile(r"35(2[89]|[3-8])")),
    ("visa", re.compile(r"4")),
    ("mastercard", re.compile(r"(5[1-5]|2(2[2-9]|[3-6]|7[01]|720))")),
)
_LAST4 = re.compile(r"(\d{4})\s*$")


def card_label(masked: str | None) -> str | None:
    """The page's "•••• 0317" for a stored masked number ending in four digits; None when no
    number is known (the page names the card otherwise); anything else as it was stored."""
    if not masked or not masked.strip():
        return None
    found = _LAST4.search(masked)
    return f"{BULLETS} {found.group(1)}" if found else masked.strip()


def card_brand(masked: str | None) -> str:
    """The brand of a stored masked number when its first digits are shown ("411111******
    1111"), else "generic" (the gateway may mask all but the last four)."""
    lead = re.match(r"\d+", (masked or "").strip())
    if lead:
        for brand, prefix in _PREFIXES:
            if prefix.match(lead.group()):
                return brand
    return GENERIC
