"""After the browser suite (this file runs last): no card number, CVV-bearing form or raw
token is in the database dump or in the server logs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from app.sandbox import cards
from tests.e2e.conftest import Server
from tests.support.pg import _bindir

ALL_CARDS = [
    cards.CARD_OK,
    *(c for c in vars(cards).values() if isinstance(c, str) and re.fullmatch(r"\d{16}", c)),
]


def _dump(db_url: str) -> str:
    url = make_url(db_url)
    proc = subprocess.run(
        [
            str(_bindir() / "pg_dump"),
            "-h",
            str(url.host),
            "-p",
            str(url.port),
            "-U",
            str(url.username),
            "--data-only",
            str(url.database),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return proc.stdout


def _read_logs(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in folder.glob("*.log"))


async def test_no_card_number_in_database_or_logs(
    server: Server, popup_server: Server, server_logs: Path
) -> None:
    dump = _dump(server.db_url)
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
