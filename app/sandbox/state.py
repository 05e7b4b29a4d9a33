"""SimState: everything the simulator remembers, kept on `app.state.sim`. One asyncio lock guards
every allocation and ledger change so concurrent requests never share a gid, god or token."""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
import secrets
import string
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.sandbox.clock import SimClock
from app.sandbox.config import SandboxConfig, config_as_json
from app.sandbox.faults import FaultInjector
from app.sandbox.forced import ForcedError
from app.sandbox.models import KickbackDelivery, Payer, Product, Token, Transaction, User
from app.sandbox.vendor_scripts import Scripts

log = logging.getLogger("app.sandbox")

GOD_START = 20000001
# Seed 003's sample auto-charge number is 1000000008: the same ten digits.
ACID_START = 1000000001
_ALNUM = string.ascii_letters + string.digits

# The control panel's product table (商品登録), used by `iid` payments.
PRODUCTS: dict[str, Product] = {
    p.iid: p
    for p in (
        Product("ITEM001", 1000, 100, 0, content_id="rpitem001", content_ps="pw1000a"),
        Product("ITEM002", 2980, 298, 500, content_id="rpitem002", content_ps="pw2980b"),
    )
}


@dataclass
class SearchSession:
    gids: list[int]
    created_at: datetime


class SimState:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        # What reset() restores: the tunable fields as created (transports are left alone, the
        # host app installs its own after start-up).
        self._initial_config = copy.deepcopy(config_as_json(config))
        self.clock = SimClock()
        self.lock = asyncio.Lock()
        self.faults = FaultInjector()
        self.maintenance = False
        self.products = PRODUCTS
        self._tasks: set[asyncio.Task[None]] = set()
        # Re-sends waiting for their time on the clock: not work drain() waits for.
        self._timers: set[asyncio.Task[None]] = set()
        self._next_delivery = 1
        self._next_gid = self._next_god = 0
        self._next_acid = ACID_START
        self.reset()

    def reset(self) -> None:
        """Back to the start: empty ledger, users and tokens, real time, no faults, no
        maintenance, and the configuration the simulator was created with. gids and gods keep
        counting up from where they were."""
        for name, value in copy.deepcopy(self._initial_config).items():
            setattr(self.config, name, value)
        self.tokens: dict[str, Token] = {}
        # challenge id -> token value
        self.challenges: dict[str, str] = {}
        self.ledger: dict[int, Transaction] = {}
        self.users: dict[str, User] = {}
        self.searches: dict[str, SearchSession] = {}
        # Every kickback attempt (the attempt log), and each notice with its attempts.
        self.kickbacks: list[dict[str, Any]] = []
        self.deliveries: list[KickbackDelivery] = []
        self.forced_errors: list[ForcedError] = []
        # Vendor scripts as tests changed them (`POST _sandbox/scripts/{name}`).
        self.scripts = Scripts()
        # Billing robo: payers by billing_code, and request times per source IP (rate limit).
        self.payers: dict[str, Payer] = {}
        self.billing_hits: dict[str, list[datetime]] = {}
        # Never backwards: a merchant database that outlives a reset already holds the gids
        # handed out so far (gid is unique there), and so would the real gateway's.
        self._next_gid = max(self._next_gid, self.config.gid_start)
        self._next_god = max(self._next_god, GOD_START)
        self.clock.reset()
        self.faults = FaultInjector()
        self.maintenance = False
        for task in (*self._tasks, *self._timers):
            task.cancel()

    # --- allocation (callers hold self.lock) -------------------------------------------------

    def next_gid(self) -> int:
        gid = self._next_gid
        self._next_gid += 1
        return gid

    def next_acid(self) -> int:
        acid = self._next_acid
        self._next_acid += 1
        return acid

    def next_god(self) -> int:
        god = self._next_god
        self._next_god += 1
        return god

    @staticmethod
    def new_ap() -> str:
        return f"{secrets.randbelow(10**7):07d}"

    def new_token_value(self) -> str:
        while True:
            # 27 random bytes -> 36 base64 characters, like the vendor's samples (may hold + /).
            value = base64.b64encode(secrets.token_bytes(27)).decode("ascii")
            if value not in self.tokens:
                return value

    @staticmethod
    def new_key() -> str:
        return "".join(secrets.choice(_ALNUM) for _ in range(10))

    # --- lookups --------------------------------------------------------------------------------

    def active_user(self, uid: str) -> User | None:
        user = self.users.get(uid)
        return None if user is None or user.pending else user

    # --- background work (kickbacks) ----------------------------------------------------------

    def new_delivery(self, params: list[tuple[str, str]]) -> KickbackDelivery:
        delivery = KickbackDelivery(self._next_delivery, params, self.clock.now())
        self._next_delivery += 1
        self.deliveries.append(delivery)
        return delivery

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start_timer(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def drain(self) -> None:
        """Wait for every kickback being sent (tests, shutdown); a re-send that waits for
        its time on the clock is not waited for (advance the clock, then drain again)."""
        while self._tasks or self._resends_due():
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
            else:
                await asyncio.sleep(0.001)  # a due re-send's timer has yet to wake

    def _resends_due(self) -> bool:
        now = self.clock.now()
        return any(
            d.state == "waiting" and d.next_resend_at is not None and d.next_resend_at <= now
            for d in self.deliveries
        )

    def stop_timers(self) -> None:
        for task in self._timers:
            task.cancel()
