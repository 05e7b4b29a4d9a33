"""The vendor scripts a simulator serves (CPToken.js, SBPS's token JS...), and the test control
that changes them: a vendor deploy or a tampered copy (their bytes with more at the end) or an
outage (an HTTP error), until restored or the simulator is reset. What the merchant's script
watcher (app/pagesec/watcher.py) must notice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field


class ScriptOverride(BaseModel):
    """What the vendor script is served as until reset: its real bytes with `append` added
    at the end (a vendor deploy or a tampered copy), or `status` instead of it (an outage)."""

    model_config = ConfigDict(extra="forbid")

    append: str = Field(default="", max_length=10_000)
    status: int | None = Field(default=None, ge=400, le=599)


@dataclass
class Scripts:
    """What tests changed of one simulator's scripts (its state holds it; a reset makes a new
    one). `original`: the script's bytes in the package."""

    overrides: dict[str, bytes] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)

    def serve(self, name: str, original: bytes) -> Response:
        if (status := self.failures.get(name)) is not None:
            return Response(status_code=status, headers={"Cache-Control": "no-store"})
        return Response(
            content=self.overrides.get(name, original),
            media_type="application/javascript; charset=utf-8",
            headers={"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"},
        )

    def change(self, name: str, original: bytes, body: ScriptOverride | None) -> dict[str, Any]:
        """`body` None restores the script."""
        self.overrides.pop(name, None)
        self.failures.pop(name, None)
        if body is not None and body.status is not None:
            self.failures[name] = body.status
        elif body is not None and body.append:
            self.overrides[name] = original + body.append.encode()
        return {
            "name": name,
            "altered": name in self.overrides,
            "status": self.failures.get(name),
        }
