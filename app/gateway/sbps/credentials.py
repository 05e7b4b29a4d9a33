"""SBPS credentials: HTTP Basic auth with user = merchant_id + service_id, password = the
hash key (research/sbps-notes.md "Transport" [C])."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from app.gateway.sbps.chars import SbpsValueError
from app.gateway.sbps.hashcode import HashKey

_MERCHANT_ID = re.compile(r"[0-9]{5}")
_SERVICE_ID = re.compile(r"[0-9]{3}")


@dataclass(frozen=True, slots=True)
class Credentials:
    merchant_id: str  # 5 digits
    service_id: str  # 3 digits
    hash_key: HashKey = field(repr=False)  # masked anyway; kept out of the repr entirely

    def __post_init__(self) -> None:
        if not _MERCHANT_ID.fullmatch(self.merchant_id):
            raise SbpsValueError("merchant_id must be 5 digits")
        if not _SERVICE_ID.fullmatch(self.service_id):
            raise SbpsValueError("service_id must be 3 digits")

    @property
    def username(self) -> str:
        return self.merchant_id + self.service_id

    def authorization_header(self) -> str:
        """The `Authorization` value. It carries the key (Base64 is no secret): the client
        must mask it in anything it records (masking.mask_header_value)."""
        pair = f"{self.username}:{self.hash_key.reveal()}".encode("ascii")
        return "Basic " + base64.b64encode(pair).decode("ascii")
