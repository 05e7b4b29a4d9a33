"""SbpsState: everything the SBPS simulator remembers, on `app.state.sbps`. One asyncio lock
guards every allocation and ledger change, so concurrent requests never share an id or a token."""

from __future__ import annotations

import asyncio
import copy
import secrets

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.sandbox.clock import SimClock
from app.sandbox.faults import FaultInjector
from app.sandbox.sbps import codes
from app.sandbox.sbps.config import SbpsConfig, config_as_json
from app.sandbox.sbps.fields import jst_stamp
from app.sandbox.sbps.models import StoredCard, TdsAuthentication, Token, Transaction
from app.sandbox.vendor_scripts import Scripts

TOKEN_HEX_CHARS = 232  # seed 004's samples: about 232 hex characters


def new_token_key() -> str:
    """Hex of a fresh P-256 public key's DER SubjectPublicKeyInfo (3059301306072A8648CE3D0201...),
    the form the real token keys take."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex().upper()


class SbpsState:
    def __init__(self, config: SbpsConfig) -> None:
        self.config = config
        self._initial_config = copy.deepcopy(config_as_json(config))
        self.clock = SimClock()
        self.lock = asyncio.Lock()
        self._next_tracking = config.tracking_start
        self.reset()

    def reset(self) -> None:
        """Empty ledger, tokens and cards, real time, no faults or maintenance, the creation
        configuration. Ids keep counting up: a merchant database that outlives the reset still
        holds the ones handed out."""
        for name, value in copy.deepcopy(self._initial_config).items():
            setattr(self.config, name, value)
        self.tokens: dict[str, Token] = {}
        self.tds_tokens: dict[str, Token] = {}
        self.cards: dict[str, StoredCard] = {}
        self.tds: dict[str, TdsAuthentication] = {}
        self.ledger: list[Transaction] = []
        self.faults = FaultInjector()
        # None = off, else the code every API request answers (one of MAINTENANCE_CODES).
        self.maintenance: str | None = None
        # The token JS as tests changed it (`POST _sandbox/scripts/{name}`).
        self.scripts = Scripts()
        self.clock.reset()
        self._next_tracking = max(self._next_tracking, self.config.tracking_start)

    # --- allocation (callers hold self.lock) -------------------------------------------------

    def new_ids(self, request_id: str) -> tuple[str, str]:
        """(res_sps_transaction_id, res_tracking_id). The transaction id is laid out like the
        notes' sample: a letter, merchant and service ids, the request id without dashes and
        an 11-digit serial (32 characters); Z marks it as the simulator's."""
        number = self._next_tracking
        self._next_tracking += 1
        op = request_id.replace("-", "")[:12]
        prefix = f"Z{self.config.merchant_id}{self.config.service_id}{op}"
        # The serial is the tracking number's tail: unique as long as the tracking ids are.
        txn_id = f"{prefix}{number % 10**11:011d}"[:32]
        return txn_id, f"{number:014d}"

    def new_token(self) -> str:
        while True:
            value = secrets.token_hex(TOKEN_HEX_CHARS // 2)
            if value not in self.tokens and value not in self.tds_tokens:
                return value

    @staticmethod
    def new_recognized_no() -> str:
        return f"{secrets.randbelow(10**7):07d}"

    @staticmethod
    def new_number(digits: int) -> str:
        return f"{secrets.randbelow(10**digits):0{digits}d}"

    def new_tds_id(self) -> str:
        return secrets.token_hex(16)

    # --- lookups -------------------------------------------------------------------------------

    def by_tracking(self, tracking_id: str) -> Transaction | None:
        return next((t for t in self.ledger if t.approved and t.tracking_id == tracking_id), None)

    def transaction(self, sps_transaction_id: str, tracking_id: str) -> Transaction:
        """The approved transaction both ids name (either may be left out, not both); 11 if
        none or they disagree."""
        for txn in self.ledger:
            if not txn.approved:
                continue
            if sps_transaction_id and txn.sps_transaction_id != sps_transaction_id:
                continue
            if tracking_id and txn.tracking_id != tracking_id:
                continue
            if sps_transaction_id or tracking_id:
                return txn
        raise codes.error(codes.UNKNOWN_TRANSACTION)

    def attempts(self, order_id: str) -> list[Transaction]:
        return [t for t in self.ledger if t.order.order_id == order_id]

    def now_stamp(self) -> str:
        return jst_stamp(self.clock.now())
