"""RobotPaymentClient: the PaymentGateway implementation for ROBOT PAYMENT.

Every call posts a form (aid first, then the seed's field order), measures and records the
exchange with the request masked, and returns a result carrying an Outcome. Nothing here
raises to the caller except SearchError from `search_charges`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

import httpx

from app.gateway import codes as errors
from app.gateway.base import (
    AuthenticatedCharge,
    CallRecorder,
    CardResult,
    ChargePage,
    ChargeQuery,
    ChargeRecord,
    ChargeResult,
    ChargeSearchLimits,
    ErrorKind,
    GatewayCall,
    GatewayErrorInfo,
    GatewayEvent,
    OnetouchCharge,
    Outcome,
    Reauthorization,
    TokenCharge,
    UserResult,
)
from app.gateway.masking import mask_key_field, mask_params, mask_text
from app.gateway.robotpayment import notification, search
from app.gateway.robotpayment.codec import (
    CarduserKind,
    CarduserResponse,
    encode_form,
    registration_uid_index,
)
from app.gateway.robotpayment.interpret import (
    card_result,
    carduser_interpreter,
    charge_result,
    payment_interpreter,
    user_result,
)
from app.gateway.robotpayment.search import ChargeSearch
from app.gateway.transport import Exchange, Exchanger, Verdict

log = logging.getLogger(__name__)

TOKEN_PATH = "gateway/gateway_token.aspx"
ONETOUCH_PATH = "gateway/onetouch.aspx"
GATEWAY_PATH = "gateway/gateway.aspx"
REAUTH_PATH = "gateway/re_auth.aspx"
CARDUSER_PATH = "gateway/carduser.aspx"
CARDUSER_TOKEN_PATH = "gateway/carduser_token.aspx"

_FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded"}
# Where answers carry the user key: `rst,ec,uid,key,...` and, with registration, the
# payment line's 14th field (`...,id,ps,uid,key,num`), or the 15th in the seed's layout
# with a second sf (located by the uid: _registration_masker).
_CARDUSER_KEY_INDEX = 3
_PAYMENT_KEY_INDEX = 13
# Free parameters may not shadow a gateway field, and card data is never sent from here.
_RESERVED = frozenset(
    {
        *("aid", "rt", "jb", "cmd", "tid", "cod", "uid", "key", "num", "tkn", "iid"),
        *("am", "tx", "sf", "ta", "em", "pn", "md", "pt"),
        *("cn", "ed", "fn", "ln", "cvv"),
        *("gid", "rst", "ap", "ec", "god", "id", "ps", "acid"),
        *("ut", "hak"),
    }
)


def _put(form: dict[str, str], name: str, value: object) -> None:
    if value is not None and value != "":
        form[name] = str(value)


def _amounts(
    form: dict[str, str],
    amount: int | None,
    tax: int | None,
    shipping: int | None,
    item_code: str | None,
) -> None:
    """A registered product (iid) carries its own price and job: no am/tx/sf and no jb (seed
    000 pp.13, 18 list none). Otherwise am/tx/sf are required, so missing ones are sent as 0
    (a CHECK is am=tx=sf=0)."""
    if item_code:
        form.pop("jb", None)
        form["iid"] = item_code
        return
    form["am"] = str(amount or 0)
    form["tx"] = str(tax or 0)
    form["sf"] = str(shipping or 0)


def _key_masker(index: int) -> Callable[[str], str]:
    return lambda text: mask_key_field(text, index)


def _registration_masker(uid: str) -> Callable[[str], str]:
    """The key stands after the uid we sent, wherever the layout puts it (one `sf` or two,
    codec.registration_uid_index); when the uid is not found, both places it could be."""

    def mask(text: str) -> str:
        index = registration_uid_index(text.split(","), uid)
        if index is not None:
            return mask_key_field(text, index + 1)
        return mask_key_field(mask_key_field(text, _PAYMENT_KEY_INDEX), _PAYMENT_KEY_INDEX + 1)

    return mask


# A gateway that does not know ut/hak on an endpoint would echo them as free data.
_HAK_ECHO = re.compile(r"(?i)(hak=)[0-9a-f]+")


def connection_auth(code: str, now: float) -> dict[str, str]:
    """接続認証: `ut` (Unix seconds) and `hak` = SHA-256 hex of ut followed by the code
    (research: page-security-and-peers-notes.md)."""
    ut = str(int(now))
    return {"ut": ut, "hak": hashlib.sha256((ut + code).encode("utf-8")).hexdigest()}


def _without_hak(mask: Callable[[str], str]) -> Callable[[str], str]:
    return lambda text: _HAK_ECHO.sub(r"\1***", mask(text))


def _free(form: dict[str, str], extra: Mapping[str, str]) -> None:
    for name, value in extra.items():
        if name.lower() in _RESERVED or name in form:
            log.warning("free parameter %r dropped: it is a gateway field", name)
            continue
        form[name] = value


class RobotPaymentClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        aid: str,
        result_mode: int = 1,
        search_base_url: str,
        search_api_key: str,
        search_http: httpx.AsyncClient | None = None,
        search_read_timeout: float | None = None,
        recorder: CallRecorder | None = None,
        deadline_seconds: float = 40.0,
        retry_delays: Sequence[float] = (0.2, 0.5),
        connection_auth_code: str = "",
    ) -> None:
        if result_mode not in (0, 1):
            raise ValueError("result_mode must be 0 (kickback) or 1 (response)")
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._aid = aid
        self.result_mode = result_mode
        self._connection_auth_code = connection_auth_code
        self._exchanger = Exchanger(
            recorder=recorder, deadline_seconds=deadline_seconds, retry_delays=retry_delays
        )
        self._search = ChargeSearch(
            http=search_http or http,
            exchanger=self._exchanger,
            base_url=search_base_url,
            api_key=search_api_key,
            read_timeout=search_read_timeout,
        )

    # --- payments ------------------------------------------------------------------------

    async def charge_token(self, charge: TokenCharge, *, ref: str | None = None) -> ChargeResult:
        form = {"aid": self._aid, "jb": charge.job, "rt": str(self.result_mode)}
        _put(form, "cod", charge.order_id)
        _put(form, "uid", charge.customer_id)
        form["tkn"] = charge.token
        _amounts(form, charge.amount, charge.tax, charge.shipping, charge.item_code)
        _put(form, "em", charge.email)
        _put(form, "pn", charge.phone)
        _free(form, charge.extra)
        return await self._charge(
            "charge_token", TOKEN_PATH, form, ref=ref, registering=charge.customer_id
        )

    async def charge_onetouch(
        self, charge: OnetouchCharge, *, ref: str | None = None
    ) -> ChargeResult:
        form = {"aid": self._aid, "rt": str(self.result_mode), "cmd": "4"}
        _put(form, "cod", charge.order_id)
        form |= {
            "uid": charge.customer_id,
            "key": charge.customer_key,
            "num": str(charge.card_seq),
            "jb": charge.job,
        }
        _amounts(form, charge.amount, charge.tax, charge.shipping, charge.item_code)
        _put(form, "em", charge.email)
        _put(form, "pn", charge.phone)
        _put(form, "md", charge.method)
        _put(form, "pt", charge.installments)
        _free(form, charge.extra)
        return await self._charge("charge_onetouch", ONETOUCH_PATH, form, ref=ref)

    async def complete_authentication(
        self, charge: AuthenticatedCharge, *, ref: str | None = None
    ) -> ChargeResult:
        """ROBOT PAYMENT runs 3-D Secure in the browser before the token charge (its token
        is bound to it): it never answers REDIRECT, so there is nothing to complete."""
        error = GatewayErrorInfo(
            "three_ds_redirect_not_supported",
            "three_ds_redirect_not_supported",
            "ROBOT PAYMENT has no server-side 3-D Secure step.",
            "ROBOT PAYMENTにはサーバー側の3Dセキュア手順がありません。",
            False,
            422,
            ErrorKind.INVALID,
        )
        call = GatewayCall(
            operation="complete_authentication",
            endpoint="(none)",
            request={},
            http_status=None,
            response_body=None,
            latency_ms=0.0,
            outcome=Outcome.FAILED,
            error_code=error.code,
            ref=ref,
            started_at=datetime.now(UTC),
        )
        return ChargeResult(outcome=Outcome.FAILED, error=error, call=call)

    async def capture(self, charge_id: int, *, ref: str | None = None) -> ChargeResult:
        return await self._sales_or_cancel("capture", "SALES", charge_id, ref)

    async def cancel(self, charge_id: int, *, ref: str | None = None) -> ChargeResult:
        return await self._sales_or_cancel("cancel", "CANCEL", charge_id, ref)

    async def reauthorize(
        self, request: Reauthorization, *, ref: str | None = None
    ) -> ChargeResult:
        # rt=1 whatever the mode (seed 002 lets re_auth choose either): the old charge is
        # canceled and a new one made in this call, and ops wait for the answer; with rt=0 the
        # new gid would only be known from a kickback that may never come.
        form = {"aid": self._aid, "rt": "1", "tid": str(request.charge_id)}
        _amounts(form, request.amount, request.tax, request.shipping, None)
        _put(form, "em", request.email)
        _put(form, "pn", request.phone)
        _free(form, request.extra)
        return await self._charge("reauthorize", REAUTH_PATH, form, ref=ref, result_mode=1)

    async def _sales_or_cancel(
        self, operation: str, job: str, gid: int, ref: str | None
    ) -> ChargeResult:
        # rt=0 gives no kickback for SALES/CANCEL (seed 002), so always ask for the answer.
        form = {"aid": self._aid, "jb": job, "rt": "1", "tid": str(gid)}
        return await self._charge(operation, GATEWAY_PATH, form, ref=ref, result_mode=1)

    async def _charge(
        self,
        operation: str,
        path: str,
        form: dict[str, str],
        *,
        ref: str | None,
        registering: str | None = None,
        result_mode: int | None = None,
    ) -> ChargeResult:
        """`registering`: the uid a pay with registration sends (user + card registered)."""
        mode = self.result_mode if result_mode is None else result_mode
        exchange = self._exchange(
            operation,
            path,
            form,
            ref=ref,
            mutating=True,
            mask_response=_registration_masker(registering) if registering else mask_text,
        )
        verdict, call = await self._exchanger.run(
            self._http, exchange, payment_interpreter(mode, registering)
        )
        return charge_result(verdict, call, registration=registering is not None)

    # --- users and cards -----------------------------------------------------------------

    async def register_user(
        self,
        customer_id: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult:
        form = self._carduser_form("0", uid=customer_id, em=email, pn=phone)
        return user_result(*await self._carduser("register_user", form, "user", ref=ref))

    async def update_user(
        self,
        customer_id: str,
        customer_key: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult:
        form = self._carduser_form("1", uid=customer_id, key=customer_key, em=email, pn=phone)
        return user_result(*await self._carduser("update_user", form, "user", ref=ref))

    async def delete_user(
        self, customer_id: str, customer_key: str, *, ref: str | None = None
    ) -> UserResult:
        form = self._carduser_form("2", uid=customer_id, key=customer_key)
        return user_result(*await self._carduser("delete_user", form, "user", ref=ref))

    async def get_user(self, customer_id: str, *, ref: str | None = None) -> UserResult:
        form = self._carduser_form("3", uid=customer_id)
        verdict, call = await self._carduser("get_user", form, "user_info", ref=ref, mutating=False)
        return user_result(verdict, call)

    async def register_card(
        self,
        customer_id: str,
        customer_key: str,
        token: str,
        card_seq: int | None = None,
        *,
        ref: str | None = None,
        token_key: str | None = None,  # SBPS's; a CPToken.js token needs none
    ) -> CardResult:
        # Same endpoint and cmd for both; `card_seq` turns a registration into an update.
        form = self._carduser_form("4", uid=customer_id, key=customer_key, num=card_seq, tkn=token)
        operation = "register_card" if card_seq is None else "update_card"
        verdict, call = await self._carduser(
            operation, form, "card", ref=ref, path=CARDUSER_TOKEN_PATH
        )
        return card_result(verdict, call)

    async def get_card(
        self, customer_id: str, customer_key: str, card_seq: int, *, ref: str | None = None
    ) -> CardResult:
        form = self._carduser_form("6", uid=customer_id, key=customer_key, num=card_seq)
        verdict, call = await self._carduser("get_card", form, "card_info", ref=ref, mutating=False)
        return card_result(verdict, call)

    async def delete_card(
        self, customer_id: str, customer_key: str, card_seq: int, *, ref: str | None = None
    ) -> CardResult:
        form = self._carduser_form("5", uid=customer_id, key=customer_key, num=card_seq)
        return card_result(*await self._carduser("delete_card", form, "card", ref=ref))

    def _carduser_form(self, cmd: str, **fields: object) -> dict[str, str]:
        form = {"aid": self._aid, "rt": "1", "cmd": cmd}
        for name, value in fields.items():
            _put(form, name, value)
        return form

    async def _carduser(
        self,
        operation: str,
        form: dict[str, str],
        kind: CarduserKind,
        *,
        ref: str | None,
        mutating: bool = True,
        path: str = CARDUSER_PATH,
    ) -> tuple[Verdict[CarduserResponse], GatewayCall]:
        exchange = self._exchange(
            operation,
            path,
            form,
            ref=ref,
            mutating=mutating,
            mask_response=_key_masker(_CARDUSER_KEY_INDEX),
        )
        return await self._exchanger.run(self._http, exchange, carduser_interpreter(kind))

    def describe_error(self, code: str) -> GatewayErrorInfo:
        return errors.lookup(code)

    def parse_notification(
        self, raw_query: bytes, raw_body: bytes, content_type: str | None
    ) -> GatewayEvent:
        return notification.parse_notification(raw_query, raw_body, content_type)

    # --- charges search ------------------------------------------------------------------

    async def search_charges(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        charge_id: int | None = None,
        jobs: Sequence[str] | None = None,
    ) -> list[ChargeRecord]:
        """All payments created in the range (any length; both ends inclusive, aware
        datetimes), following pages and narrowing windows. Raises SearchError when the
        gateway cannot answer (and ValueError for a naive datetime, before any request)."""
        return await self._search.search(
            created_from=created_from, created_to=created_to, gid=charge_id, jobs=jobs
        )

    @property
    def charge_search_limits(self) -> ChargeSearchLimits:
        return search.LIMITS

    async def search_charges_page(self, query: ChargeQuery) -> ChargePage:
        """One page of the charges search (seed 003), for ops: a fresh search each time."""
        return await self._search.page(query)

    # --- plumbing ------------------------------------------------------------------------

    def _exchange(
        self,
        operation: str,
        path: str,
        form: dict[str, str],
        *,
        ref: str | None,
        mutating: bool,
        mask_response: Callable[[str], str],
    ) -> Exchange:
        # The one place every .aspx request passes (not the charges search: its own API key).
        if self._connection_auth_code:
            form = form | connection_auth(self._connection_auth_code, time.time())
            mask_response = _without_hak(mask_response)
        return Exchange(
            operation=operation,
            url=f"{self._base_url}/{path}",
            content=encode_form(form),
            headers=_FORM_HEADERS,
            masked_request=mask_params(form),
            mutating=mutating,
            ref=ref,
            mask_response=mask_response,
        )
