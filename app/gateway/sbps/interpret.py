"""From an SBPS answer to an Outcome, and from there to the neutral result types.

An OK answer is SUCCESS; an NG answer's res_err_code decides through the codec's table
(errors.outcome_for: maintenance UNAVAILABLE, declines DECLINED, 96 and the system-error
types UNKNOWN, the rest FAILED). An answer that cannot be read, an NG without a code, or an
OK without the ids the call must return is an SbpsCodecError: the Exchanger makes it UNKNOWN
for a call that changes something (never re-sent) and retries it for a read.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.gateway.base import (
    ChargeRecord,
    ChargeResult,
    ChargeStatus,
    GatewayCall,
    GatewayErrorInfo,
    Outcome,
)
from app.gateway.sbps import errors
from app.gateway.sbps.chars import ENCODING
from app.gateway.sbps.codec import SbpsCodecError, SbpsResponse, parse_response
from app.gateway.transport import Interpreter, Verdict, require_2xx

# The brand codes the token script and the answers use, as the neutral ChargeRecord numbers
# them (ROBOT PAYMENT's: 1 Visa, 2 Master, 3 JCB, 4 Amex, 5 Diners, 6 Discover).
_BRANDS = {
    "V": (1, "visa"),
    "M": (2, "mastercard"),
    "J": (3, "jcb"),
    "A": (4, "amex"),
    "D": (5, "diners"),
    "X": (6, "discover"),
}


def interpreter(request_id: str, required: Sequence[str] = ()) -> Interpreter[SbpsResponse]:
    """`required`: the SbpsResponse fields an OK answer to this call must carry (the ids an
    authorization returns); an OK without them cannot be acted on."""

    def interpret(status: int, text: str) -> Verdict[SbpsResponse]:
        require_2xx(status)
        # The Exchanger hands over text; SBPS answers are Shift_JIS (CP932), and what
        # decoded as CP932 (or as ASCII) encodes back to the same document.
        try:
            raw = text.encode(ENCODING)
        except UnicodeEncodeError as exc:
            raise SbpsCodecError("the answer is not Shift_JIS text") from exc
        response = parse_response(raw, expected_id=request_id)
        if response.ok:
            missing = [name for name in required if not getattr(response, name)]
            if missing:
                raise SbpsCodecError(f"an OK answer without {missing}")
            return Verdict(Outcome.SUCCESS, None, response)
        if not response.err_code:
            raise SbpsCodecError("an NG answer without res_err_code")
        code = response.err_code
        return Verdict(errors.outcome_for(code), errors.lookup(code), response)

    return interpret


def tracking_number(response: SbpsResponse | None) -> int | None:
    """res_tracking_id (14 digits) as the neutral charge id."""
    if response is None or not response.tracking_id or not response.tracking_id.isdigit():
        return None
    return int(response.tracking_id)


def charge_result(
    verdict: Verdict[SbpsResponse],
    call: GatewayCall,
    *,
    outcome: Outcome | None = None,
    error: GatewayErrorInfo | None = None,
    authorization: SbpsResponse | None = None,
    customer_id: str | None = None,
) -> ChargeResult:
    """`authorization`: the answer that created the charge, when a later step (commit,
    sales) is the one reported; its ids are the charge's. SBPS ids on the neutral result:
    tracking_id (14 digits) is the charge id, as ROBOT PAYMENT's gid is (the lookup and
    every later call accept it); sps_transaction_id (32 characters) goes where ROBOT
    PAYMENT's order code (god) goes, kept for the audit and for support."""
    source = authorization or verdict.parsed
    info = source.pay_method_info if source else None
    saved = customer_id is not None and (outcome or verdict.outcome) is Outcome.SUCCESS
    return ChargeResult(
        outcome=outcome or verdict.outcome,
        charge_id=tracking_number(source),
        gateway_order_code=source.sps_transaction_id if source else None,
        approval_code=info.recognized_no if info else None,
        # SBPS has no user key: the cust_code is the handle (docs/gateway.md).
        customer_id=customer_id if saved else None,
        customer_key=customer_id if saved else None,
        card_seq=1 if saved else None,  # one card per cust_code
        error=error if error is not None else verdict.error,
        call=call,
    )


def _status(response: SbpsResponse) -> tuple[ChargeStatus, str | None]:
    """res_status 0 an authorization, 1 a declined attempt (the simulator; the notes name
    res_status only); payment_status 1 authorized, 2 sold, 3 refunded, 4 canceled."""
    info = response.pay_method_info
    if response.status == "1":
        return ChargeStatus.FAILED, None
    payment = info.payment_status if info else None
    committed = info is not None and info.commit_status == "1"
    if payment == "1":
        # An authorization never committed is not a payment SBPS keeps, and nothing of ours
        # commits it later (a commit that failed is never re-sent; a lookup comes only after
        # the pay's claim has passed): no money moves, so the charge failed. (Unsettled, it
        # kept the payment open through every reconciliation until a person was asked.)
        return (ChargeStatus.AUTHORIZED, "AUTH") if committed else (ChargeStatus.FAILED, None)
    if payment == "2":
        return ChargeStatus.CAPTURED, "CAPTURE"
    if payment in ("3", "4"):
        return ChargeStatus.CANCELED, "CANCEL"
    return ChargeStatus.UNSETTLED, None


def charge_record(response: SbpsResponse) -> ChargeRecord | None:
    """One lookup answer (MG01-00101-101) as the neutral search row; None without a
    readable tracking id."""
    charge_id = tracking_number(response)
    if charge_id is None:
        return None
    status, job = _status(response)
    info = response.pay_method_info
    brand = _BRANDS.get(info.cardbrand_code or "") if info else None
    number = info.cc_number if info else None
    return ChargeRecord(
        charge_id=charge_id,
        status=status,
        job=job,
        card_brand=brand[0] if brand else None,
        brand=brand[1] if brand else None,
        card_last4=number[-4:] if number and number[-4:].isdigit() else None,
    )
