"""The last check of the whole suite (scripts/test runs this tier last, and this file sorts
last in it): every database on the shared PostgreSQL server - the integration, end-to-end and
reliability tiers' - and every log any tier wrote to TEST_LOG_DIR hold no sandbox card number,
no CVV and no raw card token (tokens appear only masked: `tkn(len=..,sha256=..)`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest

from app.sandbox import cards
from tests.support.pg import dump_data

pytestmark = pytest.mark.reliability

CARD_NUMBERS = sorted(
    {v for v in vars(cards).values() if isinstance(v, str) and re.fullmatch(r"\d{16}", v)}
)
# A CVV next to its name: `cvv=123` (forms, queries) or `"cvv": "123"` (JSON).
CVV = re.compile(r"""(?i)\bcvv["']?\s*[=:]\s*["']?\d""")
# A token outside its masked form: `tkn=<value>` or `"tkn": "<value>"` / `"token": "<value>"`.
TOKEN_IN_CONTEXT = re.compile(
    r"""(?i)(?:\btkn=(?!\*\*\*|tkn\(|&|$|\s)|"(?:tkn|token)"\s*:\s*"(?!tkn\(|\*|"))"""
)
# The shape of a sandbox token (27 random bytes in base64: 36 characters, like the vendor's).
TOKEN_SHAPE = re.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/]{36}(?![A-Za-z0-9+/=_-])")


def _grouped(number: str) -> list[str]:
    """The number as written by hand too: `4444 3333 2222 1111`, `4444-3333-…`."""
    groups = [number[i : i + 4] for i in range(0, 16, 4)]
    return [number, " ".join(groups), "-".join(groups)]


def _looks_like_token(candidate: str) -> bool:
    # Random base64 has both cases and a digit; ids, hashes and words do not fit the shape.
    return bool(
        re.search(r"[a-z]", candidate)
        and re.search(r"[A-Z]", candidate)
        and re.search(r"\d", candidate)
    )


def find_card_data(text: str) -> list[str]:
    """What of card data `text` holds, described without repeating it in full."""
    found = [
        f"card number ending {n[-4:]}" for n in CARD_NUMBERS for form in _grouped(n) if form in text
    ]
    found += [f"CVV at {m.start()}" for m in CVV.finditer(text)]
    found += [
        f"token at {m.start()}: {text[m.start() : m.start() + 12]}…"
        for m in TOKEN_IN_CONTEXT.finditer(text)
    ]
    found += [
        f"token-shaped {m.group()[:6]}… at {m.start()}"
        for m in TOKEN_SHAPE.finditer(text)
        if _looks_like_token(m.group())
    ]
    return found


def test_the_detector_finds_what_it_must() -> None:
    # The check below can fail: each kind of leak is recognised, masked forms are not.
    token = "Ab3dEfGh1jKlMn0pQrStUvWxYz12345678+/"
    for leak in (
        f"x {cards.CARD_DECLINE_G55} y",
        "4444 3333 2222 1111",
        "cvv=123",
        '{"cvv": "123"}',
        f"tkn={token}&am=1",
        f'{{"tkn": "{token}"}}',
        f"token {token} end",
    ):
        assert find_card_data(leak), leak
    assert find_card_data(with_bytea_decoded("1\t\\\\x636e3d34343434333333333232323231313131\n"))
    for clean in (
        "tkn(len=36,sha256=0a1b2c3d)",
        "tkn=***",
        '{"tkn": "tkn(len=36,sha256=0a1b2c3d)"}',
        "************1111",
        "pay_4f2dbb3a57a24e3fa7f807743b58d1dd cs_75386a012cac4b26b73040bf963633f5",
        "cvv=***",
    ):
        assert not find_card_data(clean), clean


# A bytea value in the dump's COPY data (`\\x3435…`), e.g. a kickback's raw bytes.
_BYTEA = re.compile(r"\\\\x((?:[0-9a-f]{2})+)")


def with_bytea_decoded(dump: str) -> str:
    """The dump plus the text of every bytea value in it (percent-escapes undone too)."""
    decoded = [
        unquote_to_bytes(bytes.fromhex(m.group(1))).decode("utf-8", errors="replace")
        for m in _BYTEA.finditer(dump)
    ]
    return "\n".join([dump, *decoded])


def test_no_card_data_in_any_database(pg_url: str) -> None:
    dump = with_bytea_decoded(dump_data(pg_url, every_database=True))
    # Not vacuous: the tiers' databases are there, with payments and masked tokens.
    databases = re.findall(r"^\\connect\s+(?:-reuse-previous=on\s+)?\"?([^\s\"]+)", dump, re.M)
    assert any(d.startswith("rp_it_") for d in databases), databases
    assert "gateway_calls" in dump and "tkn(len=" in dump, "the dump holds audited calls"
    assert not (leaks := find_card_data(dump)), f"card data in the databases: {leaks[:20]}"


def test_no_card_data_in_any_log() -> None:
    folder = os.environ.get("TEST_LOG_DIR")
    if not folder:
        pytest.skip("TEST_LOG_DIR is not set: run the suite with scripts/test")
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    texts = {p: p.read_text(encoding="utf-8", errors="replace") for p in files}
    # Not vacuous: the app's, the simulator's and the e2e servers' logs are there.
    names = " ".join(p.name for p in files)
    assert "app-" in names and "simulator-" in names, names
    assert any("gateway" in t for t in texts.values()), "the logs record gateway calls"
    leaks = {str(p): found for p, t in texts.items() if (found := find_card_data(t))}
    assert not leaks, f"card data in the logs: {leaks}"
