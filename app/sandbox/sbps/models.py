"""In-memory records of the SBPS simulator: tokens, stored cards, 3-D Secure authentications and
the ledger of authorizations. Plain dataclasses; SbpsState owns the collections."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from app.sandbox.sbps.cards import brand, masked

TdsStatus = Literal["pending", "challenge", "authenticated", "failed", "canceled"]

# payment_status in MG01-00101-101 (notes: "1 authorized ... 3 refunded"; 4 is ours).
AUTHORIZED, SOLD, REFUNDED, CANCELED = "1", "2", "3", "4"


@dataclass(frozen=True)
class Card:
    number: str
    expiration: str  # YYYYMM
    security_code: str = ""

    @property
    def brand(self) -> str:
        return brand(self.number)

    @property
    def masked(self) -> str:
        return masked(self.number)

    def expired(self, now: datetime) -> bool:
        """Valid through the last day of its month."""
        return (int(self.expiration[:4]), int(self.expiration[4:])) < (now.year, now.month)

    def view(self) -> dict[str, str]:
        return {"cc_number": self.masked, "cc_expiration": self.expiration, "brand": self.brand}


@dataclass
class Token:
    """A card token (com_sbps_system.generateToken) or a 3-D Secure info token
    (com_sbps_system_tds2.generateToken: card is None, the shopper's details instead)."""

    value: str
    key: str
    created_at: datetime
    card: Card | None = None
    details: dict[str, str] = field(default_factory=dict)
    used: bool = False


@dataclass
class StoredCard:
    cust_code: str
    card: Card
    payinfo_key: str
    saved_at: datetime

    def view(self) -> dict[str, Any]:
        return {"cust_code": self.cust_code, "payinfo_key": self.payinfo_key, **self.card.view()}


@dataclass
class Order:
    """What an authorization asks for (ST01-00131-101, TA02-00101-101, ST01-00133-101)."""

    order_id: str
    cust_code: str
    item_id: str
    item_name: str
    amount: int
    dealings_type: str
    divide_times: str
    save_card: bool
    brand_return: bool


@dataclass
class TdsAuthentication:
    id: str
    order: Order
    card: Card
    ok_return_url: str
    ng_return_url: str
    created_at: datetime
    status: TdsStatus = "pending"
    used: bool = False


@dataclass
class Refund:
    amount: int
    at: datetime
    partial: bool


@dataclass
class Transaction:
    order: Order
    card: Card
    via: str  # token, stored, 3ds, reauth
    created_at: datetime
    approved: bool
    err_code: str = ""
    sps_transaction_id: str = ""
    tracking_id: str = ""
    recognized_no: str = ""
    sps_cust_no: str = ""
    sps_payment_no: str = ""
    commit_status: str = "0"
    payment_status: str = AUTHORIZED
    sold_amount: int = 0
    refunds: list[Refund] = field(default_factory=list)
    committed_at: datetime | None = None
    sold_at: datetime | None = None
    canceled_at: datetime | None = None
    reauth_of: str = ""  # the tracking_id this one re-authorized

    @property
    def refunded(self) -> int:
        return sum(r.amount for r in self.refunds)

    @property
    def balance(self) -> int:
        """What the shopper pays now: sold minus refunded (authorized before sales)."""
        if not self.approved or self.payment_status == CANCELED:
            return 0
        if self.payment_status == AUTHORIZED:
            return self.order.amount
        return self.sold_amount - self.refunded

    def view(self) -> dict[str, Any]:
        def stamp(value: datetime | None) -> str | None:
            return value.isoformat() if value else None

        return {
            "sps_transaction_id": self.sps_transaction_id,
            "tracking_id": self.tracking_id,
            "order_id": self.order.order_id,
            "cust_code": self.order.cust_code,
            "item_id": self.order.item_id,
            "item_name": self.order.item_name,
            "approved": self.approved,
            "err_code": self.err_code,
            "via": self.via,
            "amount": self.order.amount,
            "dealings_type": self.order.dealings_type,
            "divide_times": self.order.divide_times,
            "card": self.card.view(),
            "recognized_no": self.recognized_no,
            "commit_status": self.commit_status,
            "payment_status": self.payment_status,
            "sold_amount": self.sold_amount,
            "refunded_amount": self.refunded,
            "refunds": [
                {"amount": r.amount, "at": r.at.isoformat(), "partial": r.partial}
                for r in self.refunds
            ],
            "balance": self.balance,
            "reauth_of": self.reauth_of,
            "created_at": stamp(self.created_at),
            "committed_at": stamp(self.committed_at),
            "sold_at": stamp(self.sold_at),
            "canceled_at": stamp(self.canceled_at),
        }
