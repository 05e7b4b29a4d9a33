"""The charging engine shared by gateway_token, onetouch and re_auth: magic-card outcome,
ledger entry under the lock, the positional answer, the kickback, and lost-answer faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fastapi.responses import PlainTextResponse, Response

from app.sandbox import cards, kickback
from app.sandbox.faults import GARBAGE_BODY, FaultPlan
from app.sandbox.models import CardData, Product, Transaction, TxnStatus
from app.sandbox.state import SimState
from app.sandbox.wire import CSV_MEDIA_TYPE, csv_response, payment_line

PAYMENT_FIELDS = ("gid", "rst", "ap", "ec", "god", "cod", "am", "tx", "sf", "ta", "id", "ps")


@dataclass
class ChargeSpec:
    jb: str
    am: int
    tx: int
    sf: int
    cod: str
    card: CardData
    em: str = ""
    pn: str = ""
    uid: str = ""
    num: int | None = None
    product: Product | None = None
    reauth_of: int | None = None
    free: tuple[tuple[str, str], ...] = ()  # the free parameters (その他データ) as received


async def charge(
    sim: SimState,
    spec: ChargeSpec,
    *,
    guard: Callable[[], None] | None = None,
    after: Callable[[Transaction], None] | None = None,
) -> Transaction:
    """Authorize with the card company (simulated) and record the result in the ledger.

    `guard` re-checks preconditions inside the lock (after a slow card's wait); `after` applies
    linked changes (user registration, re-auth cancel) atomically with the new ledger entry."""
    magic = cards.lookup(spec.card.number)
    if magic.speed == "slow":
        await asyncio.sleep(sim.config.slow_seconds)
    async with sim.lock:
        if guard is not None:
            guard()
        now = sim.clock.now()
        decline = magic.decline or ("G83" if spec.card.expired(now) else None)
        approved_status: TxnStatus = "captured" if spec.jb == "CAPTURE" else "authorized"
        txn = Transaction(
            gid=sim.next_gid(),
            god=sim.next_god(),
            jb=spec.jb,
            initial_jb=spec.jb,
            status="declined" if decline else approved_status,
            ap="" if decline else sim.new_ap(),
            ec=decline or "",
            am=spec.am,
            tx=spec.tx,
            sf=spec.sf,
            cod=spec.cod,
            card=spec.card,
            created_at=now,
            updated_at=now,
            em=spec.em,
            pn=spec.pn,
            uid=spec.uid,
            num=spec.num,
            product=spec.product,
            reauth_of=spec.reauth_of,
            free=dict(spec.free),
        )
        sim.ledger[txn.gid] = txn
        if after is not None:
            after(txn)
    return txn


def txn_fields(txn: Transaction) -> list[str]:
    product = txn.product if txn.approved else None
    return [
        str(txn.gid),
        "1" if txn.approved else "2",
        txn.ap,
        txn.ec,
        str(txn.god),
        txn.cod,
        str(txn.am),
        str(txn.tx),
        str(txn.sf),
        str(txn.ta),
        product.content_id if product else "",
        product.content_ps if product else "",
    ]


def error_fields(code: str, cod: str = "") -> list[str]:
    """Refused before any charge: `0,2,,ER900,,,0,0,0,0,,` (seed/PDF sample layout)."""
    return ["0", "2", "", code, "", cod, "0", "0", "0", "0", "", ""]


@dataclass
class PaymentAnswer:
    """One payment outcome, rendered either as the rt=1 line or as rt=0 `OK` + kickback."""

    fields: list[str]
    extra: list[tuple[str, str]]  # uid/key/num after registration
    free: Sequence[tuple[str, str]]
    with_credentials: bool = False  # id/ps only for product payments
    # The rt=1 line of a refused payment leaves cod empty (PDF sample); the kickback names it,
    # or the merchant could not tell which order it is about.
    kickback_cod: str | None = None

    @property
    def ok(self) -> bool:
        return self.fields[1] == "1"

    def line(self, *, second_sf: bool = False) -> str:
        fields = list(self.fields)
        if second_sf:
            fields.insert(10, fields[8])  # seed 000 pp.14, 19: sf again after ta
        return payment_line([*fields, *(v for _, v in self.extra)], self.free)

    def kickback_params(self) -> list[tuple[str, str]]:
        names = PAYMENT_FIELDS if self.with_credentials else PAYMENT_FIELDS[:10]
        values = list(self.fields)
        if self.kickback_cod is not None:
            values[5] = self.kickback_cod
        return [*zip(names, values, strict=False), *self.extra, *self.free]

    def respond(self, sim: SimState, rt: str, *, notify: bool = True) -> Response:
        if rt == "0":
            if notify:
                kickback.schedule(sim, self.kickback_params())
            return PlainTextResponse("OK" if self.ok else self.fields[3])
        return csv_response(self.line(second_sf=sim.config.answer_second_sf))


async def lost_answer(
    sim: SimState, plan: FaultPlan, response: Response, *, hang: bool
) -> Response:
    """After money moved: optionally hang (the client times out) or garble the answer."""
    if hang or plan.timeout:
        await asyncio.sleep(sim.config.hang_seconds)
    if plan.garbage:
        return Response(content=GARBAGE_BODY, media_type=CSV_MEDIA_TYPE)
    return response


def hangs(card: CardData) -> bool:
    return cards.lookup(card.number).speed == "timeout"
