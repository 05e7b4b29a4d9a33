"""The inventory of every script the payment pages may load (PCI DSS 4.0.1 6.4.3), as code.

It is the one rule for the pages' script tags and their CSP: the templates render the tags
from it (app/pagesec/csp.py `page_scripts`), the CSP's script-src lists exactly its URLs, and
the vendor-script watcher (pci-watch) fetches its gateway entries. A script not in here does
not run on a payment page; adding one means adding an entry with its justification.

The payment pages (`PageKind`):
- checkout: the payment page of a checkout session (`GET /checkout/{id}`, Kind.PAYMENT);
- card: a customer's card-registration page (Kind.CARD_REGISTRATION);
- billing_card: a billing-robo payer's card page (Kind.BILLING_CARD);
- tds: the 3-D Secure step. It has no URL of its own: it runs inside the three card pages'
  document (the gateway's modal in EMV3DS_INPUT_FORM, the issuer's ACS challenge in an iframe
  of the gateway's), so its scripts are the subset of theirs that is at work during the step;
- result: a payment's or a registration's result page (result.html);
- tds_redirect: the result page of an SBPS payment waiting at 3-D Secure, which sends the
  shopper on to SBPS's 3-D Secure page (SBPS_THREE_DS; its 3-D Secure is a redirect).

For our own files `sri` is the SHA-384 of the bytes /static serves, computed once per
process; the gateway's scripts carry none (they change on the vendor's deploys, unversioned:
their approved hashes live with the watcher)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from app.config import ROOT, Settings

PageKind = Literal["checkout", "card", "billing_card", "tds", "result", "tds_redirect"]

# The pages that show the card form (and so may run 3-D Secure).
CARD_PAGES: tuple[PageKind, ...] = ("checkout", "card", "billing_card")
# Where /static is served from (app.main mounts this directory) and its URL prefix.
STATIC_DIR = ROOT / "static"
STATIC_URL = "/static"
# The real ROBOT PAYMENT gateway ships its own jQuery, which its CPToken.js needs (seed 000,
# ※1); the simulator's scripts do without it.
VENDOR_HOST = "j-payment.co.jp"


@dataclass(frozen=True, slots=True)
class InventoryScript:
    key: str  # stable id: "cptoken", "emv3ds_adapter", "vendor_jquery", "sbps_token", ...
    url: str  # as the shopper's browser loads it: absolute URL or our own path
    party: Literal["first", "gateway"]
    pages: tuple[PageKind, ...]  # the payment pages that may load it
    purpose: str  # what it does (English, one sentence)
    justification: str  # why the page needs it (PCI DSS 6.4.3), one or two sentences
    sri: str | None  # first party: "sha384-<base64>" of the bytes we serve; gateway: None


@lru_cache
def _sri_of(path: Path) -> str:
    """ "sha384-<base64>" of a file's bytes, read once per process (our files do not change
    while it runs; a deploy restarts it)."""
    digest = hashlib.sha384(path.read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode("ascii")


def _first_party(
    key: str, name: str, pages: tuple[PageKind, ...], purpose: str, justification: str
) -> InventoryScript:
    return InventoryScript(
        key=key,
        url=f"{STATIC_URL}/{name}",
        party="first",
        pages=pages,
        purpose=purpose,
        justification=justification,
        sri=_sri_of(STATIC_DIR / name),
    )


def _robotpayment(settings: Settings) -> list[InventoryScript]:
    base = f"{settings.gateway_public_base}/gateway/js"
    scripts = []
    if VENDOR_HOST in base:
        scripts.append(
            InventoryScript(
                key="vendor_jquery",
                url=f"{base}/jquery.js",
                party="gateway",
                pages=(*CARD_PAGES, "tds"),
                purpose="The gateway's own copy of jQuery, which its CPToken.js and "
                "EMV3DSAdapter.js are written against.",
                justification="ROBOT PAYMENT's token scripts do not work without jQuery "
                "(seed 000, note 1); loading the gateway's copy adds no other origin.",
                sri=None,
            )
        )
    scripts.append(
        InventoryScript(
            key="cptoken",
            url=f"{base}/CPToken.js",
            party="gateway",
            pages=CARD_PAGES,
            purpose="ROBOT PAYMENT's tokenizer: turns the card typed into the page into a "
            "one-time token in the browser (CPToken.TokenCreate; popup mode: CardInfo).",
            justification="The card number must never reach our server (SAQ A-EP): the "
            "gateway's script sends it to the gateway and gives the page only the token.",
            sri=None,
        )
    )
    scripts.append(
        InventoryScript(
            key="emv3ds_adapter",
            url=f"{base}/EMV3DSAdapter.js",
            party="gateway",
            pages=(*CARD_PAGES, "tds"),
            purpose="ROBOT PAYMENT's EMV 3-D Secure 2 adapter: authenticates the token with "
            "the issuer and opens the challenge in EMV3DS_INPUT_FORM when one is asked.",
            justification="EMV 3-D Secure is required of every EC merchant in Japan since "
            "March 2025 (クレジットカード・セキュリティガイドライン 5.0); the gateway runs it "
            "through this script only.",
            sri=None,
        )
    )
    return scripts


def _sbps(settings: Settings) -> list[InventoryScript]:
    scripts = [
        InventoryScript(
            key="sbps_token",
            url=settings.sbps_token_js,
            party="gateway",
            pages=CARD_PAGES,
            purpose="SBPS's tokenizer (com_sbps_system.generateToken): turns the card typed "
            "into the page into a one-time token and token key in the browser.",
            justification="The card number must never reach our server (SAQ A-EP): SBPS's "
            "script sends it to SBPS and gives the page only the token (seed 004).",
            sri=None,
        )
    ]
    if settings.sbps_three_ds:
        scripts.append(
            InventoryScript(
                key="sbps_tds2_info",
                url=settings.sbps_tds2_js,
                party="gateway",
                pages=("checkout",),
                purpose="SBPS's 3-D Secure 2.0 browser-information script "
                "(com_sbps_system_tds2infotoken.js): packs the browser's details and the "
                "order's e-mail or phone into a token for TA02-00101-101.",
                justification="EMV 3-D Secure is required of every EC merchant in Japan since "
                "March 2025; SBPS takes the browser's details only through this token. "
                "Payment pages only: a card registration runs no 3-D Secure.",
                sri=None,
            )
        )
    return scripts


def inventory(settings: Settings) -> tuple[InventoryScript, ...]:
    """Every script the payment pages may load under these settings (provider, mode, URLs),
    in the order a page loads them (the gateway's before ours, which calls them)."""
    gateway = _sbps(settings) if settings.gateway_provider == "sbps" else _robotpayment(settings)
    ours = [
        _first_party(
            "checkout_js",
            "checkout/checkout.js",
            (*CARD_PAGES, "tds"),
            "Our card form's script: checks the fields, asks the gateway's script for the "
            "token (and 3-D Secure), then posts only the token to us.",
            "The page's own behaviour (validation, messages in the shopper's language, the "
            "token hand-over); served by us with its SRI hash pinned in the tag.",
        ),
        _first_party(
            "result_js",
            "checkout/result.js",
            ("result",),
            "Our result page's script: follows a pending payment's status and counts down "
            "the redirect back to the shop.",
            "Without it a shopper whose payment is still pending sees no outcome; it reads "
            "no card data. Served by us with its SRI hash pinned in the tag.",
        ),
    ]
    if settings.gateway_provider == "sbps" and settings.sbps_three_ds:
        ours.append(
            _first_party(
                "three_ds_js",
                "checkout/three_ds.js",
                ("tds_redirect",),
                "Our 3-D Secure hand-over: follows the page's own link to SBPS's 3-D Secure "
                "page (the page works without it: the link is there to press).",
                "A payment waiting at SBPS's 3-D Secure must reach the issuer's page; a plain "
                "link does it too, the script saves the shopper a click. It reads no card data.",
            )
        )
    return (*gateway, *ours)


def gateway_scripts(settings: Settings) -> tuple[InventoryScript, ...]:
    """inventory(settings) filtered to party == "gateway" (what the watcher fetches)."""
    return tuple(s for s in inventory(settings) if s.party == "gateway")


def scripts_for(settings: Settings, page: PageKind) -> tuple[InventoryScript, ...]:
    """The scripts page `page` loads, in loading order."""
    return tuple(s for s in inventory(settings) if page in s.pages)
