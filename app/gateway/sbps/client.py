"""SbpsGateway: the PaymentGateway implementation for SBPS (API type, issue 20).

Every SBPS call is one POST of a Shift_JIS XML document to `api/xmlapi.do` with HTTP Basic
auth, made through the shared Exchanger (deadline, exactly-once for calls that change
something, every attempt recorded masked). A charge is several calls (authorize, commit,
for CAPTURE sales): once the authorization succeeded, any later step that fails leaves a
charge that exists at SBPS, so the result is UNKNOWN with its charge id and the lookup
(MG01-00101-101, read-only) settles it. Nothing is ever re-sent after it may have left.
docs/gateway.md "SBPS client".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import httpx

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
    InvalidNotification,
    OnetouchCharge,
    Outcome,
    Reauthorization,
    SearchError,
    ThreeDSStart,
    TokenCharge,
    UserResult,
    record_call,
)
from app.gateway.sbps import apis, errors
from app.gateway.sbps.apis import build_elements, build_request
from app.gateway.sbps.chars import SbpsValueError
from app.gateway.sbps.codec import SbpsResponse
from app.gateway.sbps.credentials import Credentials
from app.gateway.sbps.hashcode import LIMIT_SECOND, HashKey, request_date
from app.gateway.sbps.interpret import charge_record, charge_result, interpreter
from app.gateway.sbps.masking import mask_document, mask_elements
from app.gateway.transport import Exchange, Exchanger, Verdict

API_PATH = "api/xmlapi.do"
_IDS = ("sps_transaction_id", "tracking_id")
# dealings_type (notes): 10 lump sum, 21 bonus, 61 installments (+ divide_times), 80 revolving.
_DEALINGS = frozenset({"10", "21", "61", "80"})
# payment_status in the lookup: 2 sold, 3 refunded: what is sold is refunded, not canceled.
_SOLD = frozenset({"2", "3"})
# Error types that say the tracking id names no transaction: an empty search, not a failure.
_NO_SUCH = frozenset({"11", "12"})
# At most one charge per lookup; no range search at all (docs/gateway.md).
LIMITS = ChargeSearchLimits(max_range=timedelta(0), max_per_page=1000, max_results=2)
_NO_CALL = "(none)"


def _refusal(code: str, message_en: str, message_ja: str, *fields: str) -> GatewayErrorInfo:
    """Refused by us before anything was sent (nothing to settle)."""
    return GatewayErrorInfo(
        code, code, message_en, message_ja, False, 422, ErrorKind.INVALID, tuple(fields)
    )


_NOT_SUPPORTED_JA = "この操作はSBPSでは利用できません。"


def _unsupported(what: str, *fields: str) -> GatewayErrorInfo:
    return _refusal(
        "sbps_not_supported", f"SBPS does not support {what}.", _NOT_SUPPORTED_JA, *fields
    )


class SbpsGateway:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        base_url: str,
        merchant_id: str,
        service_id: str,
        hash_key: HashKey,
        recorder: CallRecorder | None = None,
        deadline_seconds: float = 40.0,
        retry_delays: Sequence[float] = (0.2, 0.5),
        read_timeout: float | None = None,
        item_id: str = "item",
        limit_second: int = LIMIT_SECOND,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`item_id`: SBPS requires one on every authorization; we sell no registered
        items through it, so one configured value is sent."""
        self._http = http
        self._url = f"{base_url.rstrip('/')}/{API_PATH}"
        self._credentials = Credentials(merchant_id, service_id, hash_key)
        self._recorder = recorder
        self._exchanger = Exchanger(
            recorder=recorder, deadline_seconds=deadline_seconds, retry_delays=retry_delays
        )
        self._read_timeout = read_timeout
        self._item_id = item_id
        self._limit_second = limit_second
        self._clock = clock

    # --- payments ------------------------------------------------------------------------

    async def charge_token(self, charge: TokenCharge, *, ref: str | None = None) -> ChargeResult:
        if not charge.token_key:
            error = _refusal(
                "sbps_token_key_missing",
                "SBPS needs the token key that came with the card token.",
                "カードのトークンキーがありません。もう一度カード情報を入力してください。",
                "token_key",
            )
            return await self._refused("charge_token", error, ref)
        if charge.three_ds is not None:
            return await self._start_three_ds(charge, charge.three_ds, ref=ref)
        manage = {
            "token": charge.token,
            "token_key": charge.token_key,
            "cust_manage_flg": "1" if charge.customer_id else None,
        }
        return await self._authorize(
            "charge_token",
            charge.job,
            charge.order_id,
            charge.customer_id,
            (charge.amount, charge.tax, charge.shipping, charge.item_code),
            (charge.method, charge.installments),
            manage,
            ref=ref,
            saving=charge.customer_id,
        )

    async def _start_three_ds(
        self, charge: TokenCharge, tds: ThreeDSStart, *, ref: str | None
    ) -> ChargeResult:
        """TA02-00101-101 (notes [S]): both tokens and the two return URLs; the answer says
        where the shopper authenticates. Nothing is charged by it (the simulator keeps no
        transaction for it), so a lost answer is UNKNOWN only in name: no charge can follow
        without our ST01-00118-101. An OK without redirect_url is taken as frictionless
        (ours [?]: the notes do not say): the authorization follows at once."""
        amounts = (charge.amount, charge.tax, charge.shipping, charge.item_code)
        order = self._order(
            charge.job,
            charge.order_id,
            charge.customer_id,
            amounts,
            (charge.method, charge.installments),
        )
        if isinstance(order, GatewayErrorInfo):
            return await self._refused("three_ds_start", order, ref)
        order["pay_option_manage"] = {
            "token": charge.token,
            "token_key": charge.token_key,
            "tds_info_token": tds.info_token,
            "tds_info_token_key": tds.info_token_key,
            "ok_return_url": tds.ok_url,
            "ng_return_url": tds.ng_url,
        }
        order["encrypted_flg"] = "0"
        verdict, call = await self._send(
            "three_ds_start", apis.TDS_START, order, ref=ref, required=("tds_authentication_id",)
        )
        if verdict.outcome is not Outcome.SUCCESS or verdict.parsed is None:
            return charge_result(verdict, call)
        auth_id = verdict.parsed.tds_authentication_id
        assert auth_id is not None  # required above
        if not verdict.parsed.redirect_url:
            total = int(str(order["amount"]))
            authenticated = AuthenticatedCharge(
                job=charge.job,
                authentication_id=auth_id,
                order_id=str(order["order_id"]),
                amount=total - (charge.tax or 0),
                tax=charge.tax or 0,
            )
            return await self.complete_authentication(authenticated, ref=ref)
        return ChargeResult(
            outcome=Outcome.REDIRECT,
            redirect_url=verdict.parsed.redirect_url,
            authentication_id=auth_id,
            call=call,
        )

    async def complete_authentication(
        self, charge: AuthenticatedCharge, *, ref: str | None = None
    ) -> ChargeResult:
        """ST01-00118-101 on the authentication id (notes [S]), with the order id and total
        of TA02 again (SBPS checks they match, the simulator does), then commit and, for
        CAPTURE, sales as every authorization."""
        if charge.job not in ("AUTH", "CAPTURE"):
            return await self._refused(
                "three_ds_authorize", _unsupported(f"the {charge.job} job", "job"), ref
            )
        total = charge.amount + charge.tax + charge.shipping
        values: dict[str, object] = {
            "order_id": charge.order_id,
            "tax": charge.tax or None,
            "amount": total,
            "pay_option_manage": {"tds_authentication_id": charge.authentication_id},
        }
        verdict, call = await self._send(
            "three_ds_authorize", apis.TDS_AUTHORIZE, values, ref=ref, required=_IDS
        )
        if verdict.outcome is not Outcome.SUCCESS or verdict.parsed is None:
            return charge_result(verdict, call)
        return await self._settle(verdict.parsed, call, charge.job, ref=ref, saving=None)

    async def charge_onetouch(
        self, charge: OnetouchCharge, *, ref: str | None = None
    ) -> ChargeResult:
        # No token: SBPS charges the card stored on cust_code (ST01-00131-101, notes).
        return await self._authorize(
            "charge_onetouch",
            charge.job,
            charge.order_id,
            charge.customer_id,
            (charge.amount, charge.tax, charge.shipping, charge.item_code),
            (charge.method, charge.installments),
            None,
            ref=ref,
        )

    async def capture(
        self, charge_id: int, *, ref: str | None = None, amount: int | None = None
    ) -> ChargeResult:
        """Sales (ST02-00201-101) of the whole authorization, or of `amount` (at most the
        authorized amount). Needs sps_transaction_id: looked up first (MG01-00101-101)."""
        found = await self._find(charge_id, ref)
        if isinstance(found, ChargeResult):
            return found
        values: dict[str, object] = self._ids(found)
        if amount is not None:
            values["pay_option_manage"] = {"amount": amount}
        verdict, call = await self._send("capture", apis.SALES, values, ref=ref)
        return charge_result(verdict, call, authorization=found)

    async def cancel(self, charge_id: int, *, ref: str | None = None) -> ChargeResult:
        """Cancel (ST02-00305-101) before sales, refund (ST02-00303-101) after: the lookup
        (MG01-00101-101, which also gives sps_transaction_id) says which."""
        found = await self._find(charge_id, ref)
        if isinstance(found, ChargeResult):
            return found
        info = found.pay_method_info
        sold = info is not None and info.payment_status in _SOLD
        operation, request_id = ("refund", apis.REFUND) if sold else ("cancel", apis.CANCEL)
        verdict, call = await self._send(operation, request_id, self._ids(found), ref=ref)
        return charge_result(verdict, call, authorization=found)

    async def reauthorize(
        self, request: Reauthorization, *, ref: str | None = None
    ) -> ChargeResult:
        """Not supported (docs/gateway.md): ST01-00133-101 needs a new order_id and the
        cust_code, which Reauthorization does not carry, and the plugin's sequence (new
        authorization, commit, sales, then refund of the old one) is four calls that move
        money: a lost answer half-way leaves two charges with no single call to settle."""
        error = _unsupported("re-authorization through this client yet")
        return await self._refused("reauthorize", error, ref)

    async def _authorize(
        self,
        operation: str,
        job: str,
        order_id: str | None,
        customer_id: str | None,
        amounts: tuple[int | None, int | None, int | None, str | None],
        method: tuple[str | None, int | None],
        manage: Mapping[str, str | None] | None,
        *,
        ref: str | None,
        saving: str | None = None,
    ) -> ChargeResult:
        order = self._order(job, order_id, customer_id, amounts, method)
        if isinstance(order, GatewayErrorInfo):
            return await self._refused(operation, order, ref)
        if manage is not None:
            order["pay_option_manage"] = {k: v for k, v in manage.items() if v}
        order["encrypted_flg"] = "0"  # the codec reads no 3DES blocks (notes)
        verdict, call = await self._send(
            operation, apis.CREDIT_AUTHORIZE, order, ref=ref, required=_IDS
        )
        if verdict.outcome is not Outcome.SUCCESS or verdict.parsed is None:
            return charge_result(verdict, call)
        return await self._settle(verdict.parsed, call, job, ref=ref, saving=saving)

    async def _settle(
        self,
        authorization: SbpsResponse,
        call: GatewayCall,
        job: str,
        *,
        ref: str | None,
        saving: str | None,
    ) -> ChargeResult:
        """Commit (SBPS keeps no uncommitted authorization), then sales for CAPTURE. The
        charge exists from here on: a step that fails makes the result UNKNOWN with its id
        and that step's error (never re-sent; the lookup shows where it stands)."""
        ids = self._ids(authorization)
        steps = [("commit", apis.COMMIT)]
        if job == "CAPTURE":
            steps.append(("sales", apis.SALES))
        for operation, request_id in steps:
            verdict, call = await self._send(operation, request_id, ids, ref=ref)
            if verdict.outcome is not Outcome.SUCCESS:
                return charge_result(
                    verdict, call, outcome=Outcome.UNKNOWN, authorization=authorization
                )
        return charge_result(
            Verdict(Outcome.SUCCESS), call, authorization=authorization, customer_id=saving
        )

    def _order(
        self,
        job: str,
        order_id: str | None,
        customer_id: str | None,
        amounts: tuple[int | None, int | None, int | None, str | None],
        method: tuple[str | None, int | None],
    ) -> dict[str, object] | GatewayErrorInfo:
        amount, tax, shipping, item_code = amounts
        if job not in ("AUTH", "CAPTURE"):
            return _unsupported(f"the {job} job (no card check without a charge)", "job")
        if item_code:
            return _unsupported("registered products (item_code)", "item_code")
        if not order_id:
            return _refusal(
                "sbps_order_id_missing",
                "SBPS needs an order id on every charge.",
                "購入IDが必要です。",
                "order_id",
            )
        dealings, times = method
        dealings = dealings or "10"
        if dealings not in _DEALINGS or (dealings == "61") != (times is not None):
            return _refusal(
                "sbps_payment_method_invalid",
                "The payment method must be 10, 21, 61 (with installments) or 80.",
                "支払方法は10・21・61(分割回数あり)・80のいずれかです。",
                "method",
                "installments",
            )
        # SBPS's amount is the total, tax included (金額(税込)); tax is its part of it.
        total = (amount or 0) + (tax or 0) + (shipping or 0)
        return {
            # SBPS requires a cust_code; a guest charge gets one per order (no card saved).
            "cust_code": customer_id or f"guest-{order_id}",
            "order_id": order_id,
            "item_id": self._item_id,
            "tax": tax or None,
            "amount": total,
            "pay_method_info": {"dealings_type": dealings, "divide_times": times},
        }

    @staticmethod
    def _ids(response: SbpsResponse) -> dict[str, object]:
        return {
            "sps_transaction_id": response.sps_transaction_id,
            "tracking_id": response.tracking_id,
        }

    async def _find(self, charge_id: int, ref: str | None) -> SbpsResponse | ChargeResult:
        """The lookup's answer for a charge id, or the result to return when there is none.
        Nothing was changed either way (the lookup is read-only), so an SBPS system error
        on it is UNAVAILABLE: ask again later."""
        verdict, call = await self._lookup(charge_id, ref)
        if verdict.outcome is Outcome.SUCCESS and verdict.parsed is not None:
            return verdict.parsed
        outcome = Outcome.UNAVAILABLE if verdict.outcome is Outcome.UNKNOWN else verdict.outcome
        return ChargeResult(outcome=outcome, error=verdict.error, call=call)

    async def _lookup(
        self, charge_id: int, ref: str | None
    ) -> tuple[Verdict[SbpsResponse], GatewayCall]:
        """MG01-00101-101 by tracking id (read-only: retried on a transient failure)."""
        tracking = f"{charge_id:014d}"  # 14 digits; an int loses leading zeros
        if charge_id < 0 or len(tracking) != 14:
            error = _refusal(
                "sbps_charge_id_invalid",
                "An SBPS charge id (tracking id) has 14 digits.",
                "SBPSの決済番号(トラッキングID)は14桁です。",
                "charge_id",
            )
            call = self._no_call("lookup", Outcome.FAILED, error, ref)
            await record_call(self._recorder, call)
            return Verdict(Outcome.FAILED, error), call
        values = {"tracking_id": tracking, "encrypted_flg": "0"}
        return await self._send(
            "lookup", apis.LOOKUP, values, ref=ref, mutating=False, required=_IDS
        )

    # --- users and cards -----------------------------------------------------------------
    # SBPS has no user: a card is stored on a cust_code (our customer id), one card each.
    # register/update/get_user make no call; the cust_code doubles as the customer key.

    async def register_user(
        self,
        customer_id: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult:
        return self._implicit_user("register_user", customer_id, email, phone, ref)

    async def update_user(
        self,
        customer_id: str,
        customer_key: str,
        email: str | None = None,
        phone: str | None = None,
        *,
        ref: str | None = None,
    ) -> UserResult:
        return self._implicit_user("update_user", customer_id, email, phone, ref)

    async def get_user(self, customer_id: str, *, ref: str | None = None) -> UserResult:
        # SBPS keeps no e-mail or phone: the result names the customer only.
        return self._implicit_user("get_user", customer_id, None, None, ref)

    async def delete_user(
        self, customer_id: str, customer_key: str, *, ref: str | None = None
    ) -> UserResult:
        """Deletes what SBPS holds for the cust_code, its stored card (MG02-00103-101); a
        cust_code with no card (10195999) is already gone."""
        values = {"cust_code": customer_id, "encrypted_flg": "0"}
        verdict, call = await self._send("delete_user", apis.CARD_DELETE, values, ref=ref)
        no_card = verdict.error is not None and verdict.error.code == errors.NO_CARD_REGISTERED
        if verdict.outcome is Outcome.SUCCESS or no_card:
            return UserResult(
                outcome=Outcome.SUCCESS,
                customer_id=customer_id,
                customer_key=customer_id,
                call=call,
            )
        return UserResult(outcome=verdict.outcome, error=verdict.error, call=call)

    def _implicit_user(
        self,
        operation: str,
        customer_id: str,
        email: str | None,
        phone: str | None,
        ref: str | None,
    ) -> UserResult:
        return UserResult(
            outcome=Outcome.SUCCESS,
            customer_id=customer_id,
            customer_key=customer_id,
            email=email,
            phone=phone,
            call=self._no_call(operation, Outcome.SUCCESS, None, ref),
        )

    async def register_card(
        self,
        customer_id: str,
        customer_key: str,
        token: str,
        card_seq: int | None = None,
        *,
        ref: str | None = None,
        token_key: str | None = None,
    ) -> CardResult:
        """MG02-00131-101 (it replaces a card already stored, so `card_seq` changes
        nothing). `token_key`: the token's key (the customer card API, the card page and a
        checkout's register-first pass it); without it nothing is sent."""
        if not token_key:
            error = _refusal(
                "sbps_token_key_missing",
                "SBPS needs the token key that came with the card token.",
                "カードのトークンキーがありません。もう一度カード情報を入力してください。",
                "token_key",
            )
            call = self._no_call("register_card", Outcome.FAILED, error, ref)
            await record_call(self._recorder, call)
            return CardResult(outcome=Outcome.FAILED, error=error, call=call)
        values = {
            "cust_code": customer_id,
            "pay_option_manage": {"token": token, "token_key": token_key},
            "encrypted_flg": "0",
        }
        verdict, call = await self._send("register_card", apis.CARD_SAVE, values, ref=ref)
        return self._card(verdict, call, customer_id)

    async def get_card(
        self, customer_id: str, customer_key: str, card_seq: int, *, ref: str | None = None
    ) -> CardResult:
        values = {"cust_code": customer_id, "encrypted_flg": "0"}
        verdict, call = await self._send(
            "get_card", apis.CARD_LOOKUP, values, ref=ref, mutating=False
        )
        return self._card(verdict, call, customer_id)

    async def delete_card(
        self, customer_id: str, customer_key: str, card_seq: int, *, ref: str | None = None
    ) -> CardResult:
        values = {"cust_code": customer_id, "encrypted_flg": "0"}
        verdict, call = await self._send("delete_card", apis.CARD_DELETE, values, ref=ref)
        return self._card(verdict, call, customer_id)

    @staticmethod
    def _card(verdict: Verdict[SbpsResponse], call: GatewayCall, customer_id: str) -> CardResult:
        if verdict.outcome is not Outcome.SUCCESS:
            return CardResult(outcome=verdict.outcome, error=verdict.error, call=call)
        info = verdict.parsed.pay_method_info if verdict.parsed else None
        return CardResult(
            outcome=Outcome.SUCCESS,
            customer_id=customer_id,
            customer_key=customer_id,
            card_seq=1,
            masked_number=info.cc_number if info else None,
            expiry=_yymm(info.cc_expiration) if info else None,
            call=call,
        )

    # --- errors, notifications, search ---------------------------------------------------

    def describe_error(self, code: str) -> GatewayErrorInfo:
        return errors.lookup(code)

    def parse_notification(
        self, raw_query: bytes, raw_body: bytes, content_type: str | None
    ) -> GatewayEvent:
        # SBPS sends credit results in the API answer only; its notices (NT01-00103-701)
        # are for deferred payment methods, which this service does not offer.
        raise InvalidNotification("SBPS sends no notification for credit card payments")

    async def search_charges(
        self,
        *,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        charge_id: int | None = None,
        jobs: Sequence[str] | None = None,
    ) -> list[ChargeRecord]:
        """SBPS has no search: only one charge by its id (the lookup, MG01-00101-101)."""
        if charge_id is None or created_from is not None or created_to is not None:
            raise SearchError(_no_search(("created_from", "created_to")))
        verdict, _call = await self._lookup(charge_id, None)
        if verdict.outcome is Outcome.SUCCESS and verdict.parsed is not None:
            record = charge_record(verdict.parsed)
            rows = [record] if record is not None else []
            return [r for r in rows if not jobs or r.job in jobs]
        error = verdict.error or errors.lookup("")
        if error.code[3:5] in _NO_SUCH:
            return []
        raise SearchError(error)

    @property
    def charge_search_limits(self) -> ChargeSearchLimits:
        return LIMITS

    async def search_charges_page(self, query: ChargeQuery) -> ChargePage:
        others = {
            "recurring_id": query.recurring_id,
            "jobs": query.jobs or None,
            "created_from": query.created_from,
            "created_to": query.created_to,
            "updated_from": query.updated_from,
            "updated_to": query.updated_to,
            "automatic": query.automatic or None,
        }
        named = tuple(name for name, value in others.items() if value is not None)
        if query.charge_id is None or named:
            raise SearchError(_no_search(named or ("charge_id",)))
        rows = await self.search_charges(charge_id=query.charge_id)
        total = len(rows)
        return ChargePage(
            rows=rows if query.page == 1 else [], page=query.page, pages=total, total=total
        )

    # --- plumbing ------------------------------------------------------------------------

    async def _send(
        self,
        operation: str,
        request_id: str,
        values: Mapping[str, object],
        *,
        ref: str | None,
        mutating: bool = True,
        required: Sequence[str] = (),
    ) -> tuple[Verdict[SbpsResponse], GatewayCall]:
        values = {
            "merchant_id": self._credentials.merchant_id,
            "service_id": self._credentials.service_id,
            **values,
        }
        now = self._clock()
        try:
            content = build_request(
                request_id,
                values,
                key=self._credentials.hash_key,
                now=now,
                limit_second=self._limit_second,
            )
            masked = mask_elements(build_elements(request_id, values))
        except (SbpsValueError, ValueError, TypeError) as exc:
            # Our value SBPS would refuse (a tab, a non-ASCII order id...): never sent.
            error = _refusal(
                "sbps_request_invalid",
                f"The request cannot be sent to SBPS: {exc}",
                "SBPSに送信できない値が含まれています。",
            )
            call = self._no_call(operation, Outcome.FAILED, error, ref)
            await record_call(self._recorder, call)
            return Verdict(Outcome.FAILED, error), call
        masked |= {
            "id": request_id,
            "request_date": request_date(now),
            "limit_second": str(self._limit_second),
            "sps_hashcode": "***",
            # The header carries the hash key (Basic auth): only the user name is kept.
            "authorization": f"Basic {self._credentials.username}:***",
        }
        exchange = Exchange(
            operation=operation,
            url=self._url,
            content=content,
            headers={
                "Content-Type": "text/xml; charset=Shift_JIS",
                "Authorization": self._credentials.authorization_header(),
            },
            masked_request=masked,
            mutating=mutating,
            ref=ref,
            mask_response=mask_document,
            read_timeout=self._read_timeout,
        )
        return await self._exchanger.run(self._http, exchange, interpreter(request_id, required))

    async def _refused(
        self, operation: str, error: GatewayErrorInfo, ref: str | None
    ) -> ChargeResult:
        call = self._no_call(operation, Outcome.FAILED, error, ref)
        await record_call(self._recorder, call)
        return ChargeResult(outcome=Outcome.FAILED, error=error, call=call)

    def _no_call(
        self, operation: str, outcome: Outcome, error: GatewayErrorInfo | None, ref: str | None
    ) -> GatewayCall:
        """What a result carries when no request was made (refused before sending, or a
        user operation SBPS has no API for)."""
        return GatewayCall(
            operation=operation,
            endpoint=_NO_CALL,
            request={},
            http_status=None,
            response_body=None,
            latency_ms=0.0,
            outcome=outcome,
            error_code=error.code if error else None,
            ref=ref,
            started_at=datetime.now(UTC),
        )


def _yymm(expiration: str | None) -> str | None:
    """SBPS's YYYYMM as the neutral CardResult's YYMM (what our cards.expiry holds, as
    ROBOT PAYMENT gives it); anything else is kept out (None) rather than stored wrong."""
    if expiration and len(expiration) == 6 and expiration.isdigit():
        return expiration[2:]
    return None


def _no_search(fields: tuple[str, ...]) -> GatewayErrorInfo:
    return _refusal(
        "sbps_no_search",
        "SBPS has no charges search: only one charge can be looked up, by its charge id.",
        "SBPSには決済の検索がありません。決済番号で1件ずつ照会できます。",
        *fields,
    )
