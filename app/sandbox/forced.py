"""Forced gateway errors: the next `times` requests to an endpoint (or to any) are refused with a
code from the seed's table (seed 000 p.26), for the codes no request of ours can provoke (account
stopped ER998, card or one-touch not available to the shop ER564/ER590, support codes ER565/ER567,
ER031, ER150, ER651, ER655, ER656). Set with `POST _sandbox/errors`; a reset clears them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ForcedError:
    code: str
    endpoint: str | None  # e.g. "gateway_token.aspx"; None: any gateway endpoint
    times: int

    def view(self) -> dict[str, Any]:
        return {"code": self.code, "endpoint": self.endpoint, "times": self.times}


def take(forced: list[ForcedError], endpoint: str) -> str | None:
    """The code the next request to `endpoint` must be refused with, if one is due (first set,
    first used)."""
    for f in forced:
        if f.endpoint in (None, endpoint):
            f.times -= 1
            if f.times <= 0:
                forced.remove(f)
            return f.code
    return None
