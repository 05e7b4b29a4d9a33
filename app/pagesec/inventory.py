"""Every script the payment pages may load (PCI DSS 6.4.3), with why each is there.

Minimal version for the watcher's branch (the pci-csp helper owns the full one); the
interface is the one in notes/pci-interface.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.config import Settings

PageKind = Literal["checkout", "card", "billing_card", "tds", "result"]

_CARD_PAGES: tuple[PageKind, ...] = ("checkout", "card", "billing_card")


@dataclass(frozen=True, slots=True)
class InventoryScript:
    key: str
    url: str
    party: Literal["first", "gateway"]
    pages: tuple[PageKind, ...]
    purpose: str
    justification: str
    sri: str | None


def _gateway(settings: Settings) -> tuple[InventoryScript, ...]:
    if settings.gateway_provider == "sbps":
        return (
            InventoryScript(
                key="sbps_token",
                url=settings.sbps_token_js,
                party="gateway",
                pages=_CARD_PAGES,
                purpose="SBPS's one-time token script: turns the card fields into a token.",
                justification="The card number never reaches our server: SBPS tokenizes it.",
                sri=None,
            ),
        )
    base = f"{settings.gateway_public_base}/gateway/js"
    scripts: list[InventoryScript] = []
    if "j-payment.co.jp" in base:
        scripts.append(
            InventoryScript(
                key="vendor_jquery",
                url=f"{base}/jquery.js",
                party="gateway",
                pages=_CARD_PAGES,
                purpose="The gateway's own jQuery copy, which CPToken.js relies on.",
                justification="Required by the gateway's CPToken.js (seed 000).",
                sri=None,
            )
        )
    scripts += [
        InventoryScript(
            key="cptoken",
            url=f"{base}/CPToken.js",
            party="gateway",
            pages=_CARD_PAGES,
            purpose="ROBOT PAYMENT's token script: turns the card fields into a one-time token.",
            justification="The card number never reaches our server: the gateway tokenizes it.",
            sri=None,
        ),
        InventoryScript(
            key="emv3ds_adapter",
            url=f"{base}/EMV3DSAdapter.js",
            party="gateway",
            pages=_CARD_PAGES,
            purpose="ROBOT PAYMENT's EMV 3-D Secure adapter: runs the issuer's authentication.",
            justification="3-D Secure is required for all EC merchants (JP security guideline).",
            sri=None,
        ),
    ]
    return tuple(scripts)


def inventory(settings: Settings) -> tuple[InventoryScript, ...]:
    """Every script the payment pages may load under these settings (provider, mode, URLs)."""
    ours = (
        InventoryScript(
            key="checkout_js",
            url="/static/checkout/checkout.js",
            party="first",
            pages=_CARD_PAGES,
            purpose="Our card page script: validates the form and posts the token.",
            justification="Drives the card form; it handles no card number itself.",
            sri=None,
        ),
        InventoryScript(
            key="result_js",
            url="/static/checkout/result.js",
            party="first",
            pages=("result",),
            purpose="Our result page script: waits for the payment's outcome.",
            justification="Shows the shopper the outcome without a reload.",
            sri=None,
        ),
    )
    return _gateway(settings) + ours


def gateway_scripts(settings: Settings) -> tuple[InventoryScript, ...]:
    """inventory(settings) filtered to party == "gateway" (what the watcher fetches)."""
    return tuple(s for s in inventory(settings) if s.party == "gateway")
