"""The gateway's wire format: form/query parameters read from raw bytes (UTF-8, CP932 fallback;
Starlette's parsers would garble CP932), free `key=value` extras, and comma-separated answers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import unquote_to_bytes

from fastapi import Request
from fastapi.responses import Response

FREE_DATA_LIMIT = 1024
CSV_MEDIA_TYPE = "text/html; charset=utf-8"  # the vendor calls it "HTML出力 カンマ区切り"


def decode_value(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp932", errors="replace")


def parse_pairs(raw: bytes) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        key = decode_value(unquote_to_bytes(name.replace(b"+", b" "))).strip()
        if key:
            pairs.append((key, decode_value(unquote_to_bytes(value.replace(b"+", b" ")))))
    return pairs


async def read_pairs(request: Request) -> list[tuple[str, str]]:
    """Body (form) first, then the query string, like ASP.NET's Request[...] lookup."""
    pairs: list[tuple[str, str]] = []
    if request.method == "POST":
        ctype = request.headers.get("content-type", "").lower()
        if not ctype or "x-www-form-urlencoded" in ctype or ctype.startswith("text/plain"):
            pairs.extend(parse_pairs(await request.body()))
    pairs.extend(parse_pairs(bytes(request.scope.get("query_string", b""))))
    return pairs


class Params:
    """Known parameters (case-insensitive names, first value wins) and the free extras."""

    def __init__(self, pairs: Iterable[tuple[str, str]], known: Iterable[str]) -> None:
        names = frozenset(known)
        self.values: dict[str, str] = {}
        self.free: list[tuple[str, str]] = []
        for key, value in pairs:
            low = key.lower()
            if low in names:
                self.values.setdefault(low, value)
            else:
                self.free.append((key, value))

    def get(self, name: str) -> str:
        """The value, or "" when absent: the gateway treats empty and missing alike."""
        return self.values.get(name, "").strip()

    def has(self, name: str) -> bool:
        return bool(self.get(name))

    def free_size(self) -> int:
        return len("&".join(f"{k}={v}" for k, v in self.free).encode("utf-8"))


def _escape(value: str) -> str:
    # Keep the echoed value on one line and inside its own field.
    for ch, code in (("%", "%25"), (",", "%2C"), ("\r", "%0D"), ("\n", "%0A")):
        value = value.replace(ch, code)
    return value


def echo_free(free: Sequence[tuple[str, str]]) -> list[str]:
    return [f"{_escape(k)}={_escape(v)}" for k, v in free]


def csv_response(text: str, status_code: int = 200) -> Response:
    body = text.encode("utf-8")
    return Response(content=body, status_code=status_code, media_type=CSV_MEDIA_TYPE)


def payment_line(fields: Sequence[str], free: Sequence[tuple[str, str]]) -> str:
    """Payment answers end with the free data field, empty or not: `...,id,ps,` as in the seeds."""
    return ",".join([*fields, *(echo_free(free) or [""])])


def carduser_line(fields: Sequence[str], free: Sequence[tuple[str, str]]) -> str:
    """carduser answers have no trailing empty field (`1,,012345,vnjpBycDO5`)."""
    return ",".join([*fields, *echo_free(free)])
