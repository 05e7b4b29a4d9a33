"""Hand-built SBPS API requests for the simulator's tests: the XML written by string formatting
and the sps_hashcode computed here from the notes' rule, independent of the simulator's own
wire code (and of the client's codec, which it must not share)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from xml.etree import ElementTree

import httpx

JST = timezone(timedelta(hours=9))
MERCHANT_ID = "30132"
SERVICE_ID = "002"
HASH_KEY = "it0sbps0hash0key0123456789abcdefghijklm"
MULTIBYTE = frozenset({"item_name", "free1", "free2", "free3", "dtl_item_name"})

Field = tuple[str, str | Sequence["Field"]]


def jst_stamp(offset_seconds: float = 0) -> str:
    return (datetime.now(JST) + timedelta(seconds=offset_seconds)).strftime("%Y%m%d%H%M%S")


def flat_values(items: Sequence[Field]) -> list[str]:
    out: list[str] = []
    for _tag, value in items:
        if isinstance(value, str):
            out.append(value.strip())
        else:
            out.extend(flat_values(value))
    return out


def hashcode(items: Sequence[Field], key: str = HASH_KEY) -> str:
    return hashlib.sha1(("".join(flat_values(items)) + key).encode("shift_jis")).hexdigest()


def _xml(items: Sequence[Field]) -> str:
    parts: list[str] = []
    for tag, value in items:
        if isinstance(value, str):
            if tag in MULTIBYTE and value:
                value = base64.b64encode(value.encode("shift_jis")).decode("ascii")
            text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            parts.append(f"<{tag}>{text}</{tag}>")
        else:
            parts.append(f"<{tag}>{_xml(value)}</{tag}>")
    return "".join(parts)


def build(
    request_id: str,
    items: Sequence[Field],
    *,
    key: str = HASH_KEY,
    request_date: str | None = None,
    limit_second: str = "600",
    sps_hashcode: str | None = None,
) -> bytes:
    """merchant_id, service_id, the items, request_date, limit_second, then sps_hashcode."""
    head: list[Field] = [("merchant_id", MERCHANT_ID), ("service_id", SERVICE_ID)]
    tail: list[Field] = [("request_date", request_date or jst_stamp())]
    if limit_second:
        tail.append(("limit_second", limit_second))
    everything = [*head, *items, *tail]
    digest = sps_hashcode if sps_hashcode is not None else hashcode(everything, key)
    body = _xml([*everything, ("sps_hashcode", digest)])
    text = f'<?xml version="1.0" encoding="Shift_JIS"?>\n<sps-api-request id="{request_id}">'
    return f"{text}{body}</sps-api-request>".encode("shift_jis")


@dataclass
class Answer:
    status: int
    id: str | None
    values: dict[str, str]  # "a/b" -> text
    raw: bytes

    @property
    def ok(self) -> bool:
        return self.values.get("res_result") == "OK"

    @property
    def code(self) -> str:
        return self.values.get("res_err_code", "")

    def __getitem__(self, path: str) -> str:
        return self.values[path]


def _flatten(node: ElementTree.Element, prefix: str, out: dict[str, str]) -> None:
    for child in node:
        path = f"{prefix}{child.tag}"
        if len(child):
            _flatten(child, f"{path}/", out)
        else:
            out[path] = (child.text or "").strip()


def read_answer(response: httpx.Response) -> Answer:
    assert response.headers["content-type"].lower().replace(" ", "") == "text/xml;charset=shift_jis"
    text = response.content.decode("shift_jis")
    assert text.startswith('<?xml version="1.0" encoding="Shift_JIS"?>')
    root = ElementTree.fromstring(text.split("?>", 1)[1])
    assert root.tag == "sps-api-response"
    values: dict[str, str] = {}
    _flatten(root, "", values)
    return Answer(response.status_code, root.get("id"), values, response.content)


class SbpsApi:
    """POSTs requests to `api/xmlapi.do` with the merchant's Basic auth."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def post(self, body: bytes, *, auth: tuple[str, str] | None = None) -> httpx.Response:
        return await self.http.post(
            "api/xmlapi.do",
            content=body,
            headers={"Content-Type": "text/xml; charset=Shift_JIS"},
            auth=auth or (MERCHANT_ID + SERVICE_ID, HASH_KEY),
        )

    async def call(self, request_id: str, items: Sequence[Field], **kwargs: str) -> Answer:
        response = await self.post(build(request_id, items, **kwargs))
        assert response.status_code == 200, response.text
        answer = read_answer(response)
        # NG answers carry no id on the root; OK ones carry the request's.
        assert answer.id == (request_id if answer.ok else None), answer.raw
        return answer
