"""Gateway-neutral types and the PaymentGateway protocol.

Services depend on these only, so a second gateway (SBPS, billing robo) can plug in by
implementing the protocol; nothing outside `app/gateway/` imports a provider module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

TokenJob = Literal["AUTH", "CAPTURE", "CHECK"]

# The free parameter (その他データ, seed 002 item 13) every charge carries with our payment id:
# the gateway echoes it in the rt=1 answer and in the kickback, so a kickback names the very
# attempt it reports (a cod is shared by every attempt of one order). docs/gateway.md.
PAYMENT_REF = "payment_ref"


def payment_ref(payment_id: str) -> dict[str, str]:
    """The free parameters that tie a charge to our payment (its `extra`)."""
    return {PAYMENT_REF: payment_id}


OnetouchJob = Literal["AUTH", "CAPTURE"]


class Outcome(StrEnum):
    """What a gateway call means for the money, which is all a caller may act on."""

    SUCCESS = "success"
    # The card company or 3-D Secure refused: definitively not charged.
    DECLINED = "declined"
    # The gateway rejected the request before charging (parameters, token...): not charged.
    FAILED = "failed"
    # rt=0 accepted the request; the result arrives later as a kickback.
    PENDING = "pending"
    # The request may have been processed (timeout after sending, 5xx, unreadable answer):
    # only reconciliation may settle it, never a blind retry.
    UNKNOWN = "unknown"
    # Provably never processed (connection refused, maintenance): safe to retry later.
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class GatewayErrorInfo:
    code: str  # the gateway's raw code (ER584, G55...) or a synthetic one (timeout...)
    stable_code: str  # our snake_case code, part of the public API
    message_en: str
    message_ja: str
    retryable: bool  # the very same request may succeed later
    http_status: int  # what our own API should answer


@dataclass(frozen=True, slots=True)
class GatewayCall:
    """One HTTP exchange with the gateway, for the audit trail and metrics."""

    operation: str
    endpoint: str
    request: dict[str, str]  # already masked: no token, card number or key in clear
    http_status: int | None
    response_body: str | None  # decoded text, PAN-like digit runs scrubbed
    latency_ms: float
    outcome: Outcome
    error_code: str | None
    ref: str | None  # our payment id or another correlation id
    started_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeResult:
    outcome: Outcome
    gid: int | None = None
    god: str | None = None
    ap: str | None = None
    cod: str | None = None
    am: int | None = None
    tx: int | None = None
    sf: int | None = None
    ta: int | None = None
    id: str | None = None
    ps: str | None = None
    uid: str | None = None
    key: str | None = None
    num: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    error: GatewayErrorInfo | None = None
    call: GatewayCall


@dataclass(frozen=True, slots=True, kw_only=True)
class UserResult:
    outcome: Outcome
    uid: str | None = None
    key: str | None = None
    email: str | None = None
    phone: str | None = None
    error: GatewayErrorInfo | None = None
    call: GatewayCall


@dataclass(frozen=True, slots=True, kw_only=True)
class CardResult:
    outcome: Outcome
    uid: str | None = None
    key: str | None = None
    num: int | None = None
    masked_number: str | None = None
    expiry: str | None = None  # YYMM, as the gateway returns it
    first_name: str | None = None
    last_name: str | None = None
    error: GatewayErrorInfo | None = None
    call: GatewayCall


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRecord:
    """One row of the gateway's charges search; datetimes are JST-aware."""

    gid: int
    acid: int | None = None
    jb: str | None = None
    ct: int | None = None
    cn4: str | None = None
    am: int | None = None
    tx: int | None = None
    sf: int | None = None
    ta: int | None = None
    rst: int | None = None
    ec: str | None = None
    cod: str | None = None
    nad: datetime | None = None
    cd: datetime | None = None
    vd: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenCharge:
    """A payment with a browser-made token. Either amounts or `item_code` (registered
    product); `uid` registers user + card in the same call."""

    job: TokenJob
    token: str
    amount: int | None = None
    tax: int | None = None
    shipping: int | None = None
    item_code: str | None = None
    order_id: str | None = None
    email: str | None = None
    phone: str | None = None
    uid: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OnetouchCharge:
    """A payment on a stored card (uid + key + num)."""

    job: OnetouchJob
    uid: str
    key: str
    num: int
    amount: int | None = None
    tax: int | None = None
    shipping: int | None = None
    item_code: str | None = None
    order_id: str | None = None
    email: str | None = None
    phone: str | None = None
    method: str | None = None  # md: 10 lump sum, 61 installments, 80 revolving
    installments: int | None = None  # pt, with md=61
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reauthorization:
    """Cancels payment `gid` and charges the corrected amounts under a new gid."""

    gid: int
    amount: int
    tax: int = 0
    shipping: int = 0
    email: str | None = None
    phone: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class SearchError(Exception):
    """The charges search failed for good (bad request, auth, maintenance, transport)."""

    def __init__(self, error: GatewayErrorInfo) -> None:
        super().__init__(f"{error.code}: {error.message_en}")
        self.error = error


class CallRecorder(Protocol):
    async def __call__(self, call: GatewayCall) -> None: ...


async def record_call(recorder: CallRecorder | None, call: GatewayCall) -> None:
    """Hands `call` to the audit recorder, if any. A recorder failure is logged, never raised:
    the audit trail must never change what happened to the money."""
    if recorder is None:
        return
    try:
        await recorder(call)
    except Exception:
        logging.getLogger(__name__).exception(
            "gateway call recorder failed for %s (ref=%s)", call.operation, call.ref
        )


class PaymentGateway(Protocol):
    """Every method returns a result with an Outcome instead of raising; only
    `search_charges` raises, with SearchError."""

    async def charge_token(
        self, charge: TokenCharge, *, ref: str | None = None
    ) -> ChargeResult: ...

    async def charge_onetouch(
        self, charge: OnetouchCharge, *, ref: str | None = None
    ) -> ChargeResult: ...

    async def capture(self, gid: int, *, ref: str | None = None) -> ChargeResult: ...

    async def cancel(self, gid: int, *, ref: str | None = None) -> ChargeResult: ...

    async def reauthorize(
        self, request: Reauthorization, *, ref: str | None = None
    ) -> ChargeResult: ...

    async def register_user(
        self,
        uid: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult: ...

    async def update_user(
        self,
        uid: str,
        key: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult: ...

    async def delete_user(self, uid: str, key: str, *, ref: str | None = None) -> UserResult: ...

    async def get_user(self, uid: str, *, ref: str | None = None) -> UserResult: ...

    async def register_card(
        self, uid: str, key: str, token: str, num: int | None = None, *, ref: str | None = None
    ) -> CardResult: ...

    async def get_card(
        self, uid: str, key: str, num: int, *, ref: str | None = None
    ) -> CardResult: ...

    async def delete_card(
        self, uid: str, key: str, num: int, *, ref: str | None = None
    ) -> CardResult: ...

    async def search_charges(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        gid: int | None = None,
        jobs: Sequence[str] | None = None,
    ) -> list[ChargeRecord]: ...


# --- billing robo (請求管理ロボ, seed 001) -------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingCardRegistration:
    """Register the card of a browser-made token on a billing-robo payer's payment method,
    named by exactly one of `payment_method_number` / `payment_method_code`."""

    billing_code: str
    token: str
    payment_method_number: int | None = None
    payment_method_code: str | None = None
    email: str | None = None  # must equal the payer's registered e-mail when sent
    tel: str | None = None  # digits only; must equal the payer's registered phone when sent


@dataclass(frozen=True, slots=True, kw_only=True)
class BillingCardResult:
    outcome: Outcome
    error: GatewayErrorInfo | None = None
    call: GatewayCall  # the last exchange (earlier ones, e.g. answered 429, are audited too)
    attempts: int = 1


class BillingRobo(Protocol):
    """Never raises for transport or answer problems: the result carries an Outcome."""

    async def register_credit_card(
        self, request: BillingCardRegistration, *, ref: str | None = None
    ) -> BillingCardResult: ...
