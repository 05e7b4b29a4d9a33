"""Fault injection for money-moving endpoints: each request rolls once, up front, so a seeded run
is reproducible whatever the request does afterwards."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

# Looks like an ASP.NET error page cut short: no comma layout, NUL and invalid UTF-8 bytes.
GARBAGE_BODY = (
    b"<html><head><title>Runtime Error</title></head><body><h1>Server Error in '/gateway' "
    b"Application.</h1>\xff\xfe\x00\x81"
)


@dataclass
class FaultSettings:
    timeout_after_charge: float = 0.0
    http_500: float = 0.0
    garbage_after_charge: float = 0.0
    seed: int | None = None


@dataclass(frozen=True)
class FaultPlan:
    http_500: bool = False
    timeout: bool = False
    garbage: bool = False


NO_FAULTS = FaultPlan()


class FaultInjector:
    def __init__(self) -> None:
        self.configure(FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)

    def roll(self) -> FaultPlan:
        s = self.settings
        if not (s.http_500 or s.timeout_after_charge or s.garbage_after_charge):
            return NO_FAULTS
        # Always three draws in a fixed order: the sequence depends only on the seed.
        draws = [self._rng.random() for _ in range(3)]
        return FaultPlan(
            http_500=draws[0] < s.http_500,
            timeout=draws[1] < s.timeout_after_charge,
            garbage=draws[2] < s.garbage_after_charge,
        )

    def view(self) -> dict[str, Any]:
        return asdict(self.settings)
