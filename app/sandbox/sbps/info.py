"""Look-ups and stored cards: the transaction lookup (MG01-00101-101) and the card kept on a
cust_code: save with a token (MG02-00131-101), look up (MG02-00104-101, 10195999 when there is
none), delete (MG02-00103-101)."""

from __future__ import annotations

from app.sandbox.sbps import cards, codes
from app.sandbox.sbps.calls import COMMON, Answer, Call
from app.sandbox.sbps.credit import TOKEN, decline_of, save_card, take_card_token
from app.sandbox.sbps.models import StoredCard, Transaction
from app.sandbox.sbps.wire import Item

LOOKUP_REQUIRED = COMMON
CARD_REQUIRED = (*COMMON, "cust_code")
SAVE_REQUIRED = (*CARD_REQUIRED, *TOKEN)


def _find(call: Call) -> Transaction:
    """By sps_transaction_id and/or tracking_id; or (ours, for settling a request whose answer
    was lost) by order_id: the latest attempt, approved or declined."""
    req = call.req
    if req.has("sps_transaction_id") or req.has("tracking_id"):
        return call.sim.transaction(req.get("sps_transaction_id"), req.get("tracking_id"))
    if req.has("order_id"):
        attempts = call.sim.attempts(req.get("order_id"))
        if attempts:
            return attempts[-1]
        raise codes.error(codes.UNKNOWN_TRANSACTION)
    raise codes.field_error(codes.REQUIRED, "sps_transaction_id")


def lookup(call: Call) -> Answer:
    """res_status 0 an authorization, 1 a declined attempt (nothing charged, no ids)."""
    txn = _find(call)
    detail: list[Item] = [
        ("cc_number", txn.card.masked),
        ("cc_expiration", txn.card.expiration),
        ("dealings_type", txn.order.dealings_type),
        ("divide_times", txn.order.divide_times),
        ("bonus_details_times", ""),
    ]
    info: list[Item] = [
        ("res_pay_method_info_detail", detail),
        ("cc_company_code", cards.COMPANY_CODES[txn.card.brand]),
        ("cardbrand_code", txn.card.brand),
        ("recognized_no", txn.recognized_no),
        ("commit_status", txn.commit_status if txn.approved else "0"),
        ("payment_status", txn.payment_status if txn.approved else "0"),
    ]
    return Answer(
        [
            ("res_status", "0" if txn.approved else "1"),
            ("res_sps_transaction_id", txn.sps_transaction_id),
            ("res_tracking_id", txn.tracking_id),
            ("res_pay_method_info", info),
            ("res_process_date", call.sim.now_stamp()),
        ]
    )


def _stored(call: Call) -> StoredCard:
    stored = call.sim.cards.get(call.req.get("cust_code"))
    if stored is None:
        raise codes.error(codes.NO_CARD)
    return stored


def save(call: Call) -> Answer:
    """The card company checks the card first (a decline card or an expired one is refused)."""
    card = take_card_token(call)
    decline = decline_of(call.sim, card)
    if decline:
        raise codes.SbpsError(decline)
    stored = save_card(call.sim, call.req.get("cust_code"), card)
    info: list[Item] = [("cardbrand_code", card.brand), ("res_payinfo_key", stored.payinfo_key)]
    return Answer([("res_pay_method_info", info), ("res_process_date", call.sim.now_stamp())])


def card(call: Call) -> Answer:
    stored = _stored(call)
    info: list[Item] = [
        ("cc_number", stored.card.masked),
        ("cc_expiration", stored.card.expiration),
        ("cardbrand_code", stored.card.brand),
        ("res_payinfo_key", stored.payinfo_key),
    ]
    return Answer([("res_pay_method_info", info), ("res_process_date", call.sim.now_stamp())])


def delete(call: Call) -> Answer:
    stored = _stored(call)
    del call.sim.cards[stored.cust_code]
    return Answer([("res_process_date", call.sim.now_stamp())])
