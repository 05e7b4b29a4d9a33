"""The last check of the whole suite (scripts/test runs this tier last, and this file sorts
last in it): every database on the shared PostgreSQL server - the integration, end-to-end and
reliability tiers' - and every log any tier wrote to TEST_LOG_DIR hold no sandbox card number,
no CVV and no raw card token (tokens appear only masked: `tkn(len=..,sha256=..)`)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from app.sandbox import cards
from tests.support.carddata import find_card_data, with_bytea_decoded
from tests.support.pg import dump_data

pytestmark = pytest.mark.reliability


def test_the_detector_finds_what_it_must() -> None:
    # The check below can fail: each kind of leak is recognised, masked forms are not.
    token = "Ab3dEfGh1jKlMn0pQrStUvWxYz12345678+/"
    for leak in (
        f"x {cards.CARD_DECLINE_G55} y",
        "4444 3333 2222 1111",
        "4444-3333-2222-1111",
        "4444.3333.2222.1111",
        "GET /kickback?memo=4444+3333+2222+1111&x=1",
        "4444%203333%202222%201111",
        "4444%2D3333%2d2222%2D1111",
        "4444%25203333%25202222%25201111",
        "%34%34%34%34%33%33%33%33%32%32%32%32%31%31%31%31",
        "４４４４　３３３３　２２２２　１１１１",
        "cn=4111111111111111",
        "cvv=123",
        "cvv%3D123",
        '{"cvv": "123"}',
        f"tkn={token}&am=1",
        f'{{"tkn": "{token}"}}',
        f"token {token} end",
    ):
        assert find_card_data(leak), leak
    assert find_card_data(with_bytea_decoded("1\t\\\\x636e3d34343434333333333232323231313131\n"))
    # A kickback's raw query as the dump shows it: bytea of `memo=4444+3333+2222+1111`.
    raw = b"memo=4444+3333+2222+1111".hex()
    assert find_card_data(with_bytea_decoded(f"1\t\\\\x{raw}\n"))
    for clean in (
        "tkn(len=36,sha256=0a1b2c3d)",
        "tkn=***",
        '{"tkn": "tkn(len=36,sha256=0a1b2c3d)"}',
        "************1111",
        "************1111 **** **** **** 1111",
        "pay_4f2dbb3a57a24e3fa7f807743b58d1dd cs_75386a012cac4b26b73040bf963633f5",
        "gid=109572912345&am=1000&tx=80&2026-01-15 14:15:27.123456",
        "cvv=***",
    ):
        assert not find_card_data(clean), clean


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
