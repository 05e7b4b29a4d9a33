"""Gateway-neutral types and the PaymentGateway protocol.

Services depend on these only, so a second gateway (SBPS, billing robo) can plug in by
implementing the protocol; nothing outside `app/gateway/` imports a provider module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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
    # The shopper must pass 3-D Secure at `redirect_url` first (SBPS TA02-00101-101): nothing
    # is charged yet; `complete_authentication` makes the charge once they are back.
    REDIRECT = "redirect"


class ErrorKind(StrEnum):
    """What a gateway error means to the domain: services branch on this, never on a
    provider's raw code. Each provider's error table sets it (docs/gateway.md)."""

    # The card company refused the card: definitively not charged.
    DECLINED = "declined"
    # The 3-D Secure run on the card token failed: the shopper must enter the card again.
    THREE_DS_FAILED = "three_ds_failed"
    # The card token is missing, invalid, used or expired: enter the card again.
    TOKEN_INVALID = "token_invalid"
    # Registering a customer the gateway already has.
    CUSTOMER_EXISTS = "customer_exists"
    # The customer was deleted at the gateway.
    CUSTOMER_DELETED = "customer_deleted"
    # No such customer at the gateway.
    CUSTOMER_UNKNOWN = "customer_unknown"
    # No such stored card for the customer.
    CARD_UNKNOWN = "card_unknown"
    # A capture or cancel refused because the payment already moved (captured, canceled):
    # it may only mean our view is stale, so the charges search must confirm it.
    STALE_VIEW = "stale_view"
    # Another conflict with the gateway's state (subscription stopped, one-touch rules...).
    CONFLICT = "conflict"
    # A request value the gateway refused (amount, e-mail, item code...): not charged.
    INVALID = "invalid"
    # The gateway refused us as a client (source IP, shop set-up): fix the integration.
    MISCONFIGURED = "misconfigured"
    # Maintenance or busy: provably not processed, try again later.
    UNAVAILABLE = "unavailable"
    # Our request rate is over the provider's limit: nothing done, try again in a while.
    RATE_LIMITED = "rate_limited"
    # No answer in time: the request may have been processed.
    TIMEOUT = "timeout"
    # An answer we could not read: the request may have been processed.
    UNKNOWN = "unknown"
    # A search matched more rows than the provider answers: narrow it.
    TOO_MANY_RESULTS = "too_many_results"


# The kind an error has when its table names none: from the HTTP status we answer with.
_KIND_BY_STATUS = {
    402: ErrorKind.DECLINED,
    409: ErrorKind.CONFLICT,
    422: ErrorKind.INVALID,
    429: ErrorKind.RATE_LIMITED,
    502: ErrorKind.MISCONFIGURED,
    503: ErrorKind.UNAVAILABLE,
    504: ErrorKind.TIMEOUT,
}


def kind_for_status(http_status: int) -> ErrorKind:
    return _KIND_BY_STATUS.get(http_status, ErrorKind.UNKNOWN)


@dataclass(frozen=True, slots=True)
class GatewayErrorInfo:
    code: str  # the gateway's raw code (ER584, G55...) or a synthetic one (timeout...)
    stable_code: str  # our snake_case code, part of the public API
    message_en: str
    message_ja: str
    retryable: bool  # the very same request may succeed later
    http_status: int  # what our own API should answer
    kind: ErrorKind  # what it means to the domain; `code` is kept for the audit and problems
    # The request fields the error is about, named as the neutral request type names them
    # (e.g. BillingCardRegistration.billing_code); empty when it names none.
    fields: tuple[str, ...] = ()


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
    """A payment call's answer. Every field but `outcome`/`call` is None when the gateway
    did not state it (a rejection before any charge, an rt=0 acceptance)."""

    outcome: Outcome
    charge_id: int | None = None  # the gateway's payment number (決済番号); None: no charge made
    gateway_order_code: str | None = None  # the gateway's own code for the charge (オーダーコード)
    approval_code: str | None = None  # the card company's approval number (承認番号)
    order_ref: str | None = None  # the merchant order number we sent, echoed (店舗オーダー番号)
    amount: int | None = None  # yen, as the gateway charged it (product price when registered)
    tax: int | None = None  # yen
    shipping: int | None = None  # yen
    total: int | None = None  # amount + tax + shipping, as the gateway states it
    issued_id: str | None = None  # an ID the gateway issues with some payments (発行ID)
    issued_password: str | None = None  # the password issued with it (発行パスワード)
    customer_id: str | None = None  # the stored-card customer registered by this charge
    customer_key: str | None = None  # that customer's gateway key
    card_seq: int | None = None  # the stored card's number for that customer
    extra: dict[str, str] = field(default_factory=dict)  # the echoed free parameters
    # With Outcome.REDIRECT: where the shopper's browser goes for 3-D Secure, and the id that
    # names that authentication for `complete_authentication`.
    redirect_url: str | None = None
    authentication_id: str | None = None
    error: GatewayErrorInfo | None = None
    call: GatewayCall


@dataclass(frozen=True, slots=True, kw_only=True)
class UserResult:
    outcome: Outcome
    customer_id: str | None = None  # the stored-card customer (our uid)
    customer_key: str | None = None  # its gateway key, needed for one-touch and card calls
    email: str | None = None
    phone: str | None = None
    error: GatewayErrorInfo | None = None
    call: GatewayCall


@dataclass(frozen=True, slots=True, kw_only=True)
class CardResult:
    outcome: Outcome
    customer_id: str | None = None
    customer_key: str | None = None
    card_seq: int | None = None  # the card's number for that customer
    masked_number: str | None = None
    expiry: str | None = None  # YYMM, as the gateway returns it
    first_name: str | None = None
    last_name: str | None = None
    error: GatewayErrorInfo | None = None
    call: GatewayCall


class ChargeStatus(StrEnum):
    """Where a charge stands at the gateway, as its search shows it."""

    AUTHORIZED = "authorized"  # authorized (or a card check), not captured
    CAPTURED = "captured"
    CANCELED = "canceled"
    FAILED = "failed"  # the charge failed or errored: no money moved
    UNSETTLED = "unsettled"  # not processed yet, waiting, or a state we cannot read


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeRecord:
    """One row of the gateway's charges search; datetimes are JST-aware."""

    charge_id: int  # the gateway's payment number
    status: ChargeStatus = ChargeStatus.UNSETTLED  # set by the provider from its codes
    recurring_id: int | None = None  # the automatic-billing number (自動課金番号), if any
    job: str | None = None  # the job as the charge stands now: AUTH, CAPTURE, CANCEL...
    card_brand: int | None = None  # the provider's brand code (1 Visa, 2 Master, 3 JCB...)
    brand: str | None = None  # that brand in our words (visa, mastercard...); None: not a card
    card_last4: str | None = None
    amount: int | None = None
    tax: int | None = None
    shipping: int | None = None
    total: int | None = None
    result_code: int | None = None  # the provider's raw result code, for the audit only
    error: GatewayErrorInfo | None = None  # why the charge failed, when it did
    order_ref: str | None = None  # the merchant order number sent with the charge
    next_charge_at: datetime | None = None  # next automatic-billing date (次回課金日)
    created_at: datetime | None = None  # when the charge was made (決済日)
    canceled_at: datetime | None = None  # when it was canceled (取消日), if it was


class ChargeSort(StrEnum):
    """What a charges search page is ordered by."""

    CHARGE_ID = "charge_id"
    RECURRING_ID = "recurring_id"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeQuery:
    """One page of the gateway's charges search, as ops ask for it. Datetimes are aware;
    each range end is inclusive and may be given alone."""

    # Only charges the gateway made by itself for a recurring billing (True), or only the
    # others, a recurring billing's first charge included (False).
    automatic: bool = False
    charge_id: int | None = None
    recurring_id: int | None = None
    jobs: tuple[str, ...] = ()  # AUTH, CAPTURE, SALES, CHECK, CANCEL: the job as it stands now
    created_from: datetime | None = None
    created_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    sort: ChargeSort = ChargeSort.CREATED_AT
    descending: bool = True
    page: int = 1  # from 1
    per_page: int = 100


@dataclass(frozen=True, slots=True)
class ChargeSearchLimits:
    """What a provider's charges search accepts (the domain checks a query against them)."""

    max_range: timedelta  # between the two ends of one range, when both are given
    max_per_page: int
    max_results: int  # a search matching this many rows or more is refused


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargePage:
    rows: list[ChargeRecord]
    page: int
    pages: int  # 0 when nothing matched
    total: int  # rows matching the query, in all pages


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenCharge:
    """A payment with a browser-made token. Either amounts or `item_code` (registered
    product); `customer_id` registers customer + card in the same call."""

    job: TokenJob
    token: str
    # The key the browser's token script hands out with some providers' tokens (SBPS's
    # tokenKey); None where the token alone is enough (ROBOT PAYMENT ignores it).
    token_key: str | None = None
    amount: int | None = None
    tax: int | None = None
    shipping: int | None = None
    item_code: str | None = None
    order_id: str | None = None
    email: str | None = None
    phone: str | None = None
    customer_id: str | None = None
    # How the shopper pays, as OnetouchCharge has it: 10 lump sum, 61 installments, 80
    # revolving (None: lump sum); ROBOT PAYMENT's token charge takes neither.
    method: str | None = None
    installments: int | None = None  # with method 61
    extra: dict[str, str] = field(default_factory=dict)
    # 3-D Secure run by the server through a redirect (SBPS): the answer is then REDIRECT.
    three_ds: ThreeDSStart | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreeDSStart:
    """What a redirect 3-D Secure needs: the browser's 3-D Secure info token and its key
    (SBPS com_sbps_system_tds2infotoken.js) and where the shopper comes back to."""

    info_token: str
    info_token_key: str
    ok_url: str  # authenticated
    ng_url: str  # not authenticated (both are hints: the authorization call decides)


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticatedCharge:
    """The charge of a token pay whose 3-D Secure ran (Outcome.REDIRECT earlier): the same
    job, order and total as the first call, so the gateway can check they match."""

    job: TokenJob
    authentication_id: str
    order_id: str
    amount: int
    tax: int = 0
    shipping: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OnetouchCharge:
    """A payment on a stored card (customer id + key + card number)."""

    job: OnetouchJob
    customer_id: str
    customer_key: str
    card_seq: int
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
    """Cancels charge `charge_id` and charges the corrected amounts under a new charge id."""

    charge_id: int
    amount: int
    tax: int = 0
    shipping: int = 0
    email: str | None = None
    phone: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class EventStatus(StrEnum):
    """What a notification says of its charge."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayEvent:
    """A gateway's notice of one charge's result (ROBOT PAYMENT: the kickback), unsigned: a
    claim the domain believes only by its rules (app/kickbacks/rules.py)."""

    status: EventStatus
    charge_id: int | None  # None: refused before any charge was made (e.g. 3-D Secure)
    approval_code: str | None = None
    gateway_order_code: str | None = None
    order_ref: str | None = None  # the merchant order number, exactly as sent (untrimmed)
    amount: int | None = None  # None when missing or unreadable
    tax: int | None = None
    shipping: int | None = None
    total: int | None = None
    payment_ref: str | None = None  # our payment id, echoed in the free parameters
    error: GatewayErrorInfo | None = None  # the refusal's error, when the notice names one
    # Hash of the notice's result fields: two notices with the same key are copies of one
    # (the provider decides the fields; stored, so it must never change for a provider).
    dedupe_key: str
    extra: dict[str, str] = field(default_factory=dict)  # the free parameters
    # A charge that also registered a stored card (rt=0 pay with registration): its customer,
    # key and card number, as the notice states them (believed only with the charge).
    customer_id: str | None = None
    customer_key: str | None = None
    card_seq: int | None = None
    # A product-registered charge's issued content ID and password (as in ChargeResult).
    issued_id: str | None = None
    issued_password: str | None = None


class InvalidNotification(ValueError):
    """A notice that names no usable charge or result (kept, but never applied)."""


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

    async def complete_authentication(
        self, charge: AuthenticatedCharge, *, ref: str | None = None
    ) -> ChargeResult:
        """The charge after a REDIRECT answer's 3-D Secure. A provider without a redirect
        step answers FAILED (nothing sent)."""
        ...

    async def capture(self, charge_id: int, *, ref: str | None = None) -> ChargeResult: ...

    async def cancel(self, charge_id: int, *, ref: str | None = None) -> ChargeResult: ...

    async def reauthorize(
        self, request: Reauthorization, *, ref: str | None = None
    ) -> ChargeResult: ...

    async def register_user(
        self,
        customer_id: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult: ...

    async def update_user(
        self,
        customer_id: str,
        customer_key: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult: ...

    async def delete_user(
        self, customer_id: str, customer_key: str, *, ref: str | None = None
    ) -> UserResult: ...

    async def get_user(self, customer_id: str, *, ref: str | None = None) -> UserResult: ...

    async def register_card(
        self,
        customer_id: str,
        customer_key: str,
        token: str,
        card_seq: int | None = None,
        *,
        ref: str | None = None,
        # The key that came with the token (SBPS's tokenKey; required there, ignored else).
        token_key: str | None = None,
    ) -> CardResult: ...

    async def get_card(
        self, customer_id: str, customer_key: str, card_seq: int, *, ref: str | None = None
    ) -> CardResult: ...

    async def delete_card(
        self, customer_id: str, customer_key: str, card_seq: int, *, ref: str | None = None
    ) -> CardResult: ...

    def parse_notification(
        self, raw_query: bytes, raw_body: bytes, content_type: str | None
    ) -> GatewayEvent:
        """A stored notice (as received: query, body and its content type) read into a
        GatewayEvent; raises InvalidNotification when it names no usable charge or result."""
        ...

    def describe_error(self, code: str) -> GatewayErrorInfo:
        """The entry for a raw code this gateway gave earlier (e.g. a payment's stored
        error code); an unknown code gets a generic entry that keeps it."""
        ...

    async def search_charges(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        charge_id: int | None = None,
        jobs: Sequence[str] | None = None,
    ) -> list[ChargeRecord]: ...

    @property
    def charge_search_limits(self) -> ChargeSearchLimits: ...

    async def search_charges_page(self, query: ChargeQuery) -> ChargePage:
        """One page of the charges search, in the query's order. A page past the last one
        comes back empty (with the totals). Raises SearchError; an error about the query's
        values names them in `fields` (ChargeQuery's names) and has kind INVALID."""
        ...


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
