"""Card tokens and their 3-D Secure binding. Tokens are single use (ER584 when reused or
unknown) and expire after `token_ttl_seconds` on the simulator clock (ER585). The 3-D Secure
step binds the outcome and exactly the amounts (or iid) and em/pn to the token; the payment
must repeat them (ER901) and the authentication must have succeeded (ER900).

Magic tokens (`cards.MAGIC_TOKENS`, e.g. `tok_approved`) stand for a magic card whose 3-D Secure
already ran: each use is a fresh token (never used up, never expired) bound to any amounts."""

from __future__ import annotations

import secrets
from datetime import timedelta

from app.sandbox import cards, validate
from app.sandbox.codes import GatewayError
from app.sandbox.models import CardData, ThreeDSBinding, Token
from app.sandbox.state import SimState
from app.sandbox.wire import Params

TOKEN_FIELDS = ("aid", "cn", "ed", "fn", "ln", "cvv", "md", "pt")
THREE_DS_FIELDS = ("aid", "tkn", "am", "tx", "sf", "iid", "em", "pn")


def create(sim: SimState, p: Params) -> Token:
    """Validate the card fields in error-code order and store a fresh token (caller holds lock)."""
    validate.aid(p, sim.config)
    now = sim.clock.now()
    number = validate.card_number(p.get("cn").replace(" ", "").replace("-", ""))
    ed = validate.expiry(p.get("ed"), now)
    fn, ln = validate.holder(p.get("fn"), p.get("ln"))
    md, pt = validate.md_pt(p.get("md"), p.get("pt"), required=True)
    cvv = validate.cvv(p.get("cvv"))
    card = CardData(number=number, ed=ed, fn=fn, ln=ln, cvv=cvv, md=md, pt=pt)
    token = Token(value=sim.new_token_value(), aid=p.get("aid"), card=card, created_at=now)
    sim.tokens[token.value] = token
    return token


def magic(sim: SimState, value: str) -> Token | None:
    """A fresh token for a magic token value (not stored: it can be used again), else None."""
    card = cards.by_token(value)
    if card is None:
        return None
    now = sim.clock.now()
    data = CardData(number=card.number, ed=f"{(now.year + 3) % 100:02d}12", fn="TARO", ln="YAMADA")
    binding = ThreeDSBinding(
        status="failed" if card.three_ds == "fail" else "authenticated",
        am=None,
        tx=None,
        sf=None,
        iid="",
        em="",
        pn="",
        any_payment=True,
    )
    return Token(value=value, aid=sim.config.aid, card=data, created_at=now, three_ds=binding)


def usable(sim: SimState, value: str) -> Token:
    """The token for `value` if it can still be used; ER583/ER584/ER585 otherwise."""
    if not value:
        raise GatewayError("ER583")
    fresh = magic(sim, value)
    if fresh is not None:
        return fresh
    token = sim.tokens.get(value)
    if token is None or token.used or token.aid != sim.config.aid:
        raise GatewayError("ER584")
    if sim.clock.now() - token.created_at > timedelta(seconds=sim.config.token_ttl_seconds):
        raise GatewayError("ER585")
    return token


def authenticate(sim: SimState, p: Params) -> ThreeDSBinding:
    """Run the sandbox 3-D Secure for a token; the magic card number decides the outcome."""
    validate.aid(p, sim.config)
    em, pn = validate.email(p.get("em")), validate.phone(p.get("pn"))
    iid = p.get("iid")
    am = tx = sf = None
    if iid:
        if p.has("am") or p.has("tx") or p.has("sf") or iid not in sim.products:
            raise GatewayError("ER066")
    else:
        am = validate.amount(p.get("am"), 8, "ER061")
        tx = validate.amount(p.get("tx"), 7, "ER062")
        sf = validate.amount(p.get("sf"), 7, "ER063")
    if not em and not pn:
        raise GatewayError("ER059")  # em or pn is required; the seed has no dedicated code
    token = usable(sim, p.get("tkn"))
    if token.three_ds is not None and token.three_ds.any_payment:
        return token.three_ds  # a magic token: its 3-D Secure already ran
    mode = cards.lookup(token.card.number).three_ds
    binding = ThreeDSBinding(
        status="failed" if mode == "fail" else "authenticated",
        am=am,
        tx=tx,
        sf=sf,
        iid=iid,
        em=em,
        pn=pn,
    )
    if mode == "challenge":
        binding.status = "challenge"
        binding.challenge_id = secrets.token_urlsafe(16)
        sim.challenges[binding.challenge_id] = token.value
    token.three_ds = binding  # a repeated authentication replaces the earlier one
    return binding


def finish_challenge(sim: SimState, challenge_id: str, action: str, code: str) -> ThreeDSBinding:
    """The shopper completed (with the one-time code) or canceled the challenge."""
    value = sim.challenges.pop(challenge_id, None)
    token = sim.tokens.get(value) if value else None
    binding = token.three_ds if token else None
    if binding is None or binding.status != "challenge" or binding.challenge_id != challenge_id:
        raise GatewayError("ER902")
    if action == "cancel":
        binding.status = "canceled"
    else:
        binding.status = "authenticated" if code == cards.CHALLENGE_CODE else "failed"
    return binding


def verify_3ds(
    token: Token,
    *,
    am: int | None,
    tx: int | None,
    sf: int | None,
    iid: str,
    em: str | None,
    pn: str | None,
) -> None:
    """Payment-time check; em/pn None = not compared (card registration carries none)."""
    binding = token.three_ds
    if binding is None:
        raise GatewayError("ER901")
    if binding.any_payment:
        if binding.status != "authenticated":
            raise GatewayError("ER900")
        return
    if iid:
        same_goods = binding.iid == iid
    else:
        same_goods = not binding.iid and (binding.am, binding.tx, binding.sf) == (am, tx, sf)
    same_contact = (em is None or binding.em == em) and (pn is None or binding.pn == pn)
    if not (same_goods and same_contact):
        raise GatewayError("ER901")
    if binding.status != "authenticated":
        raise GatewayError("ER900")
