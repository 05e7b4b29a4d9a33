"""The ordered structure an SBPS request is built from: leaves and nested blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Element names as the notes spell them: lowercase, digits, underscores.
_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _check_name(name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not an SBPS element name: {name!r}")


@dataclass(frozen=True, slots=True)
class Leaf:
    name: str
    value: str

    def __post_init__(self) -> None:
        _check_name(self.name)


@dataclass(frozen=True, slots=True)
class Block:
    """A nested block (`pay_method_info`, `dtls`, each `dtl`), its children in order."""

    name: str
    children: tuple[Element, ...]

    def __post_init__(self) -> None:
        _check_name(self.name)


Element = Leaf | Block
