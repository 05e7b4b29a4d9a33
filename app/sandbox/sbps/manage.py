"""After the authorization: commit (確定, ST02-00101-101), sales (売上, ST02-00201-101, for no
more than was authorized: 79), cancel before sales (ST02-00305-101), refund of what was sold
(ST02-00303-101) and partial refund (ST02-00307-101, K0 amount / K1 state)."""

from __future__ import annotations

from datetime import datetime

from app.sandbox.sbps import codes
from app.sandbox.sbps.calls import COMMON, Answer, Call
from app.sandbox.sbps.fields import jst_stamp, parse_jst
from app.sandbox.sbps.models import AUTHORIZED, CANCELED, REFUNDED, SOLD, Refund, Transaction

REQUIRED = (*COMMON, "sps_transaction_id")
AMOUNT = "pay_option_manage/amount"


def _target(call: Call) -> Transaction:
    req = call.req
    if req.has("processing_datetime") and parse_jst(req.get("processing_datetime")) is None:
        raise codes.field_error(codes.DEFINED, "processing_datetime")
    return call.sim.transaction(req.get("sps_transaction_id"), req.get("tracking_id"))


def _done(call: Call, txn: Transaction) -> Answer:
    return Answer(
        [
            ("res_sps_transaction_id", txn.sps_transaction_id),
            ("res_process_date", jst_stamp(call.sim.clock.now())),
        ]
    )


def _amount(call: Call, default: int) -> int:
    raw = call.req.get(AMOUNT)
    return int(raw) if raw else default


def sales_deadline_passed(authorized: datetime, now: datetime) -> bool:
    """Sales only until the end of the 3rd month after the authorization's month (notes: 42;
    which month counts as the first is our reading)."""
    months = (now.year - authorized.year) * 12 + now.month - authorized.month
    return months > 3


def _sell(txn: Transaction, amount: int, now: datetime) -> None:
    txn.payment_status, txn.sold_amount, txn.sold_at = SOLD, amount, now


def commit(call: Call) -> Answer:
    txn = _target(call)
    if txn.commit_status == "1" or txn.payment_status != AUTHORIZED:
        raise codes.error(codes.WRONG_STATE)
    now = call.sim.clock.now()
    txn.commit_status, txn.committed_at = "1", now
    if call.sim.config.auto_sales:
        _sell(txn, txn.order.amount, now)
    return _done(call, txn)


def sales(call: Call) -> Answer:
    txn = _target(call)
    if txn.payment_status in (SOLD, REFUNDED):
        raise codes.error(codes.ALREADY_SOLD)
    if txn.payment_status == CANCELED or txn.commit_status != "1":
        raise codes.error(codes.WRONG_STATE)
    amount = _amount(call, txn.order.amount)
    if amount < 1:
        raise codes.field_error(codes.DEFINED, "amount")
    if amount > txn.order.amount:
        raise codes.error(codes.OVER_AUTHORIZATION)
    now = call.sim.clock.now()
    if sales_deadline_passed(txn.created_at, now):
        raise codes.error(codes.SALES_PERIOD_OVER)
    _sell(txn, amount, now)
    return _done(call, txn)


def cancel(call: Call) -> Answer:
    """Before sales only: a sold charge is refunded instead (41)."""
    txn = _target(call)
    if txn.payment_status == SOLD:
        raise codes.error(codes.ALREADY_SOLD)
    if txn.payment_status != AUTHORIZED:
        raise codes.error(codes.WRONG_STATE)
    txn.payment_status, txn.canceled_at = CANCELED, call.sim.clock.now()
    return _done(call, txn)


def refund(call: Call) -> Answer:
    """All that is still sold."""
    txn = _target(call)
    if txn.payment_status != SOLD:
        raise codes.error(codes.WRONG_STATE)
    now = call.sim.clock.now()
    txn.refunds.append(Refund(txn.balance, now, partial=False))
    txn.payment_status = REFUNDED
    return _done(call, txn)


def partial_refund(call: Call) -> Answer:
    """Part of what is still sold; refunding all of it leaves the charge refunded."""
    txn = _target(call)
    if txn.payment_status != SOLD:
        raise codes.error(codes.PARTIAL_STATE)
    amount = _amount(call, 0)
    if amount < 1 or amount > txn.balance:
        raise codes.error(codes.PARTIAL_AMOUNT)
    txn.refunds.append(Refund(amount, call.sim.clock.now(), partial=True))
    if txn.balance == 0:
        txn.payment_status = REFUNDED
    return _done(call, txn)


PARTIAL_REQUIRED = (*REQUIRED, AMOUNT)
