"""In-memory records: tokens (with their 3-D Secure binding), users with stored cards, and the
ledger of transactions. Plain dataclasses; SimState owns the collections."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.sandbox import cards
from app.sandbox.clock import jst_text

ThreeDSStatus = Literal["authenticated", "challenge", "failed", "canceled"]
TxnStatus = Literal["authorized", "captured", "canceled", "declined"]


@dataclass
class CardData:
    number: str
    ed: str  # YYMM
    fn: str
    ln: str
    cvv: str = ""
    md: str = ""
    pt: str = ""

    @property
    def last4(self) -> str:
        return self.number[-4:]

    @property
    def masked(self) -> str:
        return "*" * (len(self.number) - 4) + self.last4

    def expired(self, now: datetime) -> bool:
        """A card is valid through the last day of its expiry month."""
        return (2000 + int(self.ed[:2]), int(self.ed[2:])) < (now.year, now.month)


@dataclass
class ThreeDSBinding:
    """What the shopper authenticated for: the payment must repeat exactly these values."""

    status: ThreeDSStatus
    am: int | None
    tx: int | None
    sf: int | None
    iid: str
    em: str
    pn: str
    challenge_id: str = ""
    # A magic token's: 3-D Secure ran for whatever the payment carries (no amounts to repeat).
    any_payment: bool = False


@dataclass
class Token:
    value: str
    aid: str
    card: CardData
    created_at: datetime
    used: bool = False
    three_ds: ThreeDSBinding | None = None


@dataclass
class StoredCard:
    num: int
    card: CardData
    created_at: datetime


@dataclass
class User:
    uid: str
    key: str
    em: str
    pn: str
    created_at: datetime
    cards: dict[int, StoredCard] = field(default_factory=dict)
    next_num: int = 1
    deleted: bool = False
    # Reserved by an in-flight payment with registration; invisible until it is approved.
    pending: bool = False

    def add_card(self, card: CardData, now: datetime) -> int:
        num = self.next_num
        self.next_num += 1
        self.cards[num] = StoredCard(num, card, now)
        return num

    def view(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "key": self.key,
            "em": self.em,
            "pn": self.pn,
            "deleted": self.deleted,
            "created_at": self.created_at.isoformat(),
            "cards": [
                {
                    "num": c.num,
                    "cn": c.card.masked,
                    "ed": c.card.ed,
                    "fn": c.card.fn,
                    "ln": c.card.ln,
                }
                for c in self.cards.values()
            ],
        }


@dataclass(frozen=True)
class Product:
    """A product registered in the (imaginary) control panel, with optional content ID/PW."""

    iid: str
    am: int
    tx: int
    sf: int
    content_id: str = ""
    content_ps: str = ""


@dataclass
class Transaction:
    gid: int
    god: int
    jb: str  # current state as the search API shows it: AUTH, SALES, CAPTURE, CHECK, CANCEL
    initial_jb: str
    status: TxnStatus
    ap: str
    ec: str
    am: int
    tx: int
    sf: int
    cod: str
    card: CardData
    created_at: datetime
    updated_at: datetime
    em: str = ""
    pn: str = ""
    uid: str = ""
    num: int | None = None
    product: Product | None = None
    canceled_at: datetime | None = None
    reauth_of: int | None = None
    free: dict[str, str] = field(default_factory=dict)  # the free parameters as received
    # The search's rst for this charge when a test says so (2 未処理, 3 決済待ち: not settled
    # yet, seed 003), instead of what its status gives.
    search_rst: int | None = None
    # Recurring billing (自動課金, seed 003 p.8): its number (acid), on the first charge too,
    # and whether the gateway made this charge by itself (isac true) rather than the shop
    # (the first charge: isac false). Made by `_sandbox/ledger/{gid}/recurring`.
    acid: int | None = None
    automatic: bool = False

    @property
    def ta(self) -> int:
        return self.am + self.tx + self.sf

    @property
    def approved(self) -> bool:
        return self.status != "declined"

    def touch(self, now: datetime) -> None:
        self.updated_at = now

    def ledger_view(self) -> dict[str, Any]:
        return {
            "gid": self.gid,
            "god": self.god,
            "jb": self.jb,
            "initial_jb": self.initial_jb,
            "status": self.status,
            "ap": self.ap,
            "ec": self.ec,
            "am": self.am,
            "tx": self.tx,
            "sf": self.sf,
            "ta": self.ta,
            "cod": self.cod,
            "iid": self.product.iid if self.product else "",
            # What the payment's answer and kickback carry as id/ps (an approved product's).
            "content_id": self.product.content_id if self.product and self.approved else "",
            "content_ps": self.product.content_ps if self.product and self.approved else "",
            "uid": self.uid,
            "num": self.num,
            "card_last4": self.card.last4,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "canceled_at": self.canceled_at.isoformat() if self.canceled_at else None,
            "reauth_of": self.reauth_of,
            "md": self.card.md,
            "pt": self.card.pt,
            "free": dict(self.free),
        }

    def search_view(self) -> dict[str, Any]:
        return {
            "gid": self.gid,
            "acid": self.acid,
            "jb": self.jb,
            "ct": cards.brand_code(self.card.number),
            "cn4": self.card.last4,
            "am": self.am,
            "tx": self.tx,
            "sf": self.sf,
            "ta": self.ta,
            "rst": self.search_rst or (1 if self.approved else 4),
            "ec": self.ec,
            "cod": self.cod,
            "nad": None,
            "cd": jst_text(self.created_at),
            "vd": jst_text(self.canceled_at),
        }


@dataclass
class PaymentMethod:
    """A billing-robo payer's payment method (請求先決済情報): number, optional code, and
    the card registered on it by credit_card_token, if any."""

    number: int
    code: str = ""
    card: CardData | None = None
    registered_at: datetime | None = None
    registrations: int = 0

    def view(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "code": self.code,
            "card": (
                {"cn": self.card.masked, "ed": self.card.ed, "fn": self.card.fn, "ln": self.card.ln}
                if self.card
                else None
            ),
            "registered_at": self.registered_at.isoformat() if self.registered_at else None,
            "registrations": self.registrations,
        }


@dataclass
class Payer:
    """A billing-robo payer (請求先) with the e-mail and phone registered on its department:
    3-D Secure and the optional email/tel of the request must equal these."""

    billing_code: str
    email: str = ""
    tel: str = ""
    methods: dict[int, PaymentMethod] = field(default_factory=dict)

    def method_by_code(self, code: str) -> PaymentMethod | None:
        return next((m for m in self.methods.values() if m.code and m.code == code), None)

    def view(self) -> dict[str, Any]:
        return {
            "billing_code": self.billing_code,
            "email": self.email,
            "tel": self.tel,
            "payment_methods": [m.view() for m in self.methods.values()],
        }


DeliveryState = Literal["sending", "waiting", "accepted", "given_up"]


@dataclass
class KickbackDelivery:
    """One result notification and every attempt to deliver it (first send, the configured
    duplicates, then re-sends until one is accepted or the re-sends run out)."""

    id: int
    params: list[tuple[str, str]]
    created_at: datetime
    attempts: list[dict[str, Any]] = field(default_factory=list)
    resends: int = 0
    state: DeliveryState = "sending"
    next_resend_at: datetime | None = None

    @property
    def gid(self) -> str:
        return dict(self.params).get("gid", "")

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "gid": self.gid,
            "params": dict(self.params),
            "created_at": self.created_at.isoformat(),
            "state": self.state,
            "resends": self.resends,
            "next_resend_at": self.next_resend_at.isoformat() if self.next_resend_at else None,
            "attempts": self.attempts,
        }
