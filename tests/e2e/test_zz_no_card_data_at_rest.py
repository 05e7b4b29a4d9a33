"""After the browser suite (this file runs last): no card number, CVV-bearing form or raw
token is in the database dump or in the server logs."""

from __future__ import annotations

import re
from pathlib import Path

from app.sandbox import cards
from tests.e2e.conftest import Server
from tests.support.pg import dump_data

ALL_CARDS = [
    cards.CARD_OK,
    *(c for c in vars(cards).values() if isinstance(c, str) and re.fullmatch(r"\d{16}", c)),
]


def _read_logs(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log"))


async def test_no_card_number_in_database_or_logs(
    server: Server, popup_server: Server, server_logs: Path
) -> None:
    dump = dump_data(server.db_url)
    assert "gateway_calls" in dump and "payments" in dump, "the dump is not empty"
    logs = _read_logs(server_logs)
    assert "GET /checkout" in logs or "POST /checkout" in logs, "the logs are not empty"
    for number in set(ALL_CARDS):
        assert number not in dump, f"card number {number[-4:]} found in the database"
        assert number not in logs, f"card number {number[-4:]} found in the logs"
    assert not re.search(r"\bcvv=\d", dump + logs)
    # Tokens appear only masked (tkn(len=..,sha256=..)), never as the raw value.
    for match in re.finditer(r'"tkn": "([^"]+)"', dump):
        assert match.group(1).startswith("tkn("), match.group(1)
