"""Authorizations: with a token (ST01-00131-101, optionally saving the card on cust_code), on a
stored card (the same id without a token), re-authorization on a tracking_id (ST01-00133-101),
and 3-D Secure 2.0 (TA02-00101-101, the browser page, then ST01-00118-101).

Order of checks: the order_id first (96 if it was authorized before, approved or declined, so
a deliberate re-send proves the first arrived and never charges twice), then the token, then
the card company (the magic card)."""

from __future__ import annotations

from datetime import timedelta

from app.sandbox.sbps import cards, codes
from app.sandbox.sbps.calls import COMMON, Answer, Call
from app.sandbox.sbps.fields import jst_stamp
from app.sandbox.sbps.models import Card, Order, StoredCard, TdsAuthentication, Token, Transaction
from app.sandbox.sbps.state import SbpsState
from app.sandbox.sbps.wire import Item

ORDER_FIELDS = (*COMMON, "cust_code", "order_id", "item_id", "amount")
TOKEN = ("pay_option_manage/token", "pay_option_manage/token_key")
TDS_INFO = ("pay_option_manage/tds_info_token", "pay_option_manage/tds_info_token_key")
RETURN_URLS = ("pay_option_manage/ok_return_url", "pay_option_manage/ng_return_url")


def read_order(call: Call) -> Order:
    req = call.req
    amount = int(req.get("amount"))
    if amount < 1:
        raise codes.field_error(codes.DEFINED, "amount")
    dealings = req.get("pay_method_info/dealings_type") or "10"
    divide = req.get("pay_method_info/divide_times")
    if dealings == "61" and not divide:
        raise codes.field_error(codes.REQUIRED, "divide_times")
    order = Order(
        order_id=req.get("order_id"),
        cust_code=req.get("cust_code"),
        item_id=req.get("item_id"),
        item_name=req.get("item_name"),
        amount=amount,
        dealings_type=dealings,
        divide_times=divide,
        save_card=req.get("pay_option_manage/cust_manage_flg") == "1",
        brand_return=req.get("pay_option_manage/cardbrand_return_flg") == "1",
    )
    return order


def check_new_order(sim: SbpsState, order_id: str) -> None:
    if sim.attempts(order_id):
        raise codes.error(codes.DUPLICATE)


def take_token(
    sim: SbpsState, store: dict[str, Token], value: str, key: str, name: str, ttl: float
) -> Token:
    """The token, used up now: T1 if unknown, used, or not with its own key; T2 if expired."""
    item = codes.ITEMS[name]
    token = store.get(value)
    if token is None or token.used or token.key.upper() != key.upper():
        raise codes.error(codes.TOKEN_INVALID, item)
    if sim.clock.now() - token.created_at > timedelta(seconds=ttl):
        raise codes.error(codes.TOKEN_EXPIRED, item)
    token.used = True
    return token


def take_card_token(call: Call) -> Card:
    req, sim = call.req, call.sim
    token = take_token(
        sim,
        sim.tokens,
        req.get("pay_option_manage/token"),
        req.get("pay_option_manage/token_key"),
        "token",
        sim.config.token_ttl_seconds,
    )
    if token.card is None:  # a 3-D Secure info token sent as the card's
        raise codes.error(codes.TOKEN_INVALID, codes.ITEMS["token"])
    return token.card


def save_card(sim: SbpsState, cust_code: str, card: Card) -> StoredCard:
    stored = sim.cards.get(cust_code)
    key = stored.payinfo_key if stored else sim.new_number(20)
    sim.cards[cust_code] = StoredCard(cust_code, card, key, sim.clock.now())
    return sim.cards[cust_code]


def decline_of(sim: SbpsState, card: Card) -> str:
    magic = cards.lookup(card.number)
    if magic.decline:
        return magic.decline
    if card.expired(sim.clock.now()):
        return codes.code(codes.DECLINED_NUMBER_OR_EXPIRY, "G83")
    return ""


def authorize(call: Call, order: Order, card: Card, via: str, *, reauth_of: str = "") -> Answer:
    """The card company's answer, recorded in the ledger whatever it is."""
    sim = call.sim
    decline = decline_of(sim, card)
    txn = Transaction(order, card, via, sim.clock.now(), approved=not decline, err_code=decline)
    txn.reauth_of = reauth_of
    sim.ledger.append(txn)
    if decline:
        raise codes.SbpsError(decline)
    txn.sps_transaction_id, txn.tracking_id = sim.new_ids(call.req.id)
    txn.recognized_no = sim.new_recognized_no()
    txn.sps_cust_no, txn.sps_payment_no = sim.new_number(12), sim.new_number(3)
    if order.save_card and order.cust_code:
        save_card(sim, order.cust_code, card)
    speed = cards.lookup(card.number).speed
    return Answer(authorized_items(txn), slow=speed == "slow", hang=speed == "timeout")


def authorized_items(txn: Transaction) -> list[Item]:
    return [
        ("res_sps_transaction_id", txn.sps_transaction_id),
        ("res_tracking_id", txn.tracking_id),
        (
            "res_pay_method_info",
            [
                ("cc_company_code", cards.COMPANY_CODES[txn.card.brand]),
                ("cardbrand_code", txn.card.brand if txn.order.brand_return else ""),
                ("recognized_no", txn.recognized_no),
            ],
        ),
        (
            "res_sps_info",
            [("res_sps_cust_no", txn.sps_cust_no), ("res_sps_payment_no", txn.sps_payment_no)],
        ),
        ("res_process_date", jst_stamp(txn.created_at)),
    ]


def token_authorization(call: Call) -> Answer:
    """ST01-00131-101: with token + token_key, or on the card stored on cust_code."""
    order = read_order(call)
    check_new_order(call.sim, order.order_id)
    if call.req.has("pay_option_manage/token") or call.req.has("pay_option_manage/token_key"):
        for path in TOKEN:
            if not call.req.has(path):
                raise codes.field_error(codes.REQUIRED, path.rsplit("/", 1)[-1])
        return authorize(call, order, take_card_token(call), "token")
    stored = call.sim.cards.get(order.cust_code)
    if stored is None:
        raise codes.error(codes.NO_CARD)
    return authorize(call, order, stored.card, "stored")


def reauthorization(call: Call) -> Answer:
    """ST01-00133-101: the card of an earlier tracking_id, for a new order_id."""
    order = read_order(call)
    original = call.sim.by_tracking(call.req.get("tracking_id"))
    if original is None:
        raise codes.field_error(codes.UNKNOWN_TRANSACTION, "tracking_id")
    check_new_order(call.sim, order.order_id)
    return authorize(call, order, original.card, "reauth", reauth_of=original.tracking_id)


def tds_start(call: Call) -> Answer:
    """TA02-00101-101: uses both tokens up, answers where to send the shopper."""
    sim, req = call.sim, call.req
    order = read_order(call)
    check_new_order(sim, order.order_id)
    card = take_card_token(call)
    take_token(
        sim,
        sim.tds_tokens,
        req.get("pay_option_manage/tds_info_token"),
        req.get("pay_option_manage/tds_info_token_key"),
        "tds_info_token",
        sim.config.tds_info_token_ttl_seconds,
    )
    auth = TdsAuthentication(
        id=sim.new_tds_id(),
        order=order,
        card=card,
        ok_return_url=req.get("pay_option_manage/ok_return_url"),
        ng_return_url=req.get("pay_option_manage/ng_return_url"),
        created_at=sim.clock.now(),
    )
    sim.tds[auth.id] = auth
    base = sim.config.public_base_url.rstrip("/") + "/" if sim.config.public_base_url else None
    redirect = f"{base or call.base_url}tds2/authenticate/{auth.id}"
    return Answer(
        [
            ("res_tds_authentication_id", auth.id),
            ("redirect_url", redirect),
            ("res_process_date", sim.now_stamp()),
        ]
    )


def tds_authorization(call: Call) -> Answer:
    """ST01-00118-101: the authorization of a 3-D Secure authentication that succeeded. An
    order_id or amount sent again must be the TA02's."""
    sim, req = call.sim, call.req
    auth_id = req.get("pay_option_manage/tds_authentication_id")
    auth = sim.tds.get(auth_id)
    if auth is None:
        raise codes.field_error(codes.UNKNOWN_TRANSACTION, "tds_authentication_id")
    for name, expected in (("order_id", auth.order.order_id), ("amount", str(auth.order.amount))):
        if req.has(name) and req.get(name) != expected:
            raise codes.field_error(codes.DEFINED, name)
    if auth.used:
        raise codes.error(codes.DUPLICATE)
    check_new_order(sim, auth.order.order_id)
    ttl = timedelta(seconds=sim.config.tds_authentication_ttl_seconds)
    if auth.status != "authenticated" or sim.clock.now() - auth.created_at > ttl:
        raise codes.error(codes.THREE_DS_FAILED)
    auth.used = True
    return authorize(call, auth.order, auth.card, "3ds")


TOKEN_REQUIRED = (*ORDER_FIELDS, "pay_method_info/dealings_type")
REAUTH_REQUIRED = (*ORDER_FIELDS, "tracking_id")
TDS_START_REQUIRED = (*TOKEN_REQUIRED, *TOKEN, *TDS_INFO, *RETURN_URLS)
TDS_AUTH_REQUIRED = (*COMMON, "pay_option_manage/tds_authentication_id")
