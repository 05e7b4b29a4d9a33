"""Gateway users (carduser) and their stored cards: lookups with the seed's codes (ER147 unknown
uid, ER148 wrong key, ER149 unknown card, ER652 duplicate uid, ER653 deleted user)."""

from __future__ import annotations

from app.sandbox import validate
from app.sandbox.codes import GatewayError
from app.sandbox.models import StoredCard, User
from app.sandbox.state import SimState


def find_user(sim: SimState, uid: str, key: str, *, need_key: bool = True) -> User:
    uid = validate.uid(uid)
    user = sim.active_user(uid)
    if user is None:
        raise GatewayError("ER147")
    if user.deleted:
        raise GatewayError("ER653")
    if (need_key or key) and validate.key(key) != user.key:
        raise GatewayError("ER148")
    return user


def find_card(user: User, num: str) -> StoredCard:
    card = user.cards.get(validate.num(num))
    if card is None:
        raise GatewayError("ER149")
    return card


def ensure_new_uid(sim: SimState, uid: str) -> None:
    existing = sim.users.get(uid)
    if existing is not None:
        raise GatewayError("ER653" if existing.deleted else "ER652")


def create_user(sim: SimState, uid: str, em: str, pn: str, *, pending: bool = False) -> User:
    """Register `uid` (caller holds the lock); `pending` reserves it for an in-flight payment."""
    ensure_new_uid(sim, uid)
    user = User(
        uid=uid, key=sim.new_key(), em=em, pn=pn, created_at=sim.clock.now(), pending=pending
    )
    sim.users[uid] = user
    return user
