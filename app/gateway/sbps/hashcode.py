"""sps_hashcode, request_date and limit_second (research/sbps-notes.md "Transport").

sps_hashcode = SHA-1 hex of: every element's value in document order, nested blocks flattened
in order, each stripped, concatenated, then the hash key; encoded as Shift_JIS. The values are
the ones sent, before the Base64 of multibyte fields [C: the Ruby gem, PHP and .NET
integrations]. `sps_hashcode` itself is not part of it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone

from app.gateway.sbps.chars import ENCODING, SbpsValueError
from app.gateway.sbps.elements import Block, Element

JST = timezone(timedelta(hours=9), "JST")
# The EC-CUBE plugin's value [S]: SBPS refuses a request older than this (error type 10).
LIMIT_SECOND = 600
HASHCODE = "sps_hashcode"


class HashKey:
    """The merchant's hash key: it signs every request and is the Basic-auth password. Never
    shown: repr and str are masked; only `reveal()` gives it, to the code that must send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or not value.isascii() or not value.isprintable():
            # Not echoed: the message must not carry the secret it complains about.
            raise SbpsValueError("the SBPS hash key must be non-empty printable ASCII")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "HashKey(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashKey):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(("HashKey", hashlib.sha256(self._value.encode()).digest()))

    def __reduce__(self) -> str:
        # Pickling would copy the secret into caches and queues unnoticed.
        raise TypeError("HashKey is not picklable")


def hash_values(elements: Iterable[Element]) -> Iterator[str]:
    """Every leaf value in document order, blocks flattened, sps_hashcode left out."""
    for element in elements:
        if isinstance(element, Block):
            yield from hash_values(element.children)
        elif element.name != HASHCODE:
            yield element.value


def _strip(value: str) -> str:
    # Only the ASCII space: Java's trim and Ruby's strip agree on it (tab/CR/LF are refused
    # before this), while Python's strip() would also drop an ideographic space U+3000 that
    # SBPS keeps, and the hash would differ.
    return value.strip(" ")


def _hash_material(elements: Iterable[Element], key: HashKey) -> bytes:
    """What SHA-1 is taken of. Contains the key: never log it."""
    text = "".join(_strip(v) for v in hash_values(elements)) + key.reveal()
    return text.encode(ENCODING)


def sps_hashcode(elements: Iterable[Element], key: HashKey) -> str:
    """40 lowercase hex characters."""
    return hashlib.sha1(_hash_material(elements, key), usedforsecurity=True).hexdigest()


def request_date(now: datetime) -> str:
    """`YYYYMMDDHHMMSS` in Japan time; `now` must be aware (a naive time's zone is a guess)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("request_date needs an aware datetime")
    return now.astimezone(JST).strftime("%Y%m%d%H%M%S")
