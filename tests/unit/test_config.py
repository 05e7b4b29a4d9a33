"""Settings: the embedded default needs nothing; live mode names what is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import SANDBOX_AID, Settings, parse_api_keys

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_sandbox_on_sqlite() -> None:
    s = Settings(_env_file=None)
    assert s.gateway_mode == "sandbox"
    assert s.is_sqlite
    assert s.sandbox_in_process
    assert s.gateway_public_base == "/sandbox"
    assert {k.role for k in s.parsed_api_keys} == {"merchant", "ops"}


def test_live_refuses_without_shop_keys_and_urls() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, gateway_mode="live")
    text = str(info.value)
    for name in (
        "GATEWAY_AID",
        "API_KEYS",
        "GATEWAY_BASE_URL",
        "SEARCH_API_KEY",
        "KICKBACK_SECRET",
        "WEBHOOK_SECRET_KEY",
    ):
        assert name in text


def test_live_starts_when_everything_is_set() -> None:
    s = Settings(
        _env_file=None,
        gateway_mode="live",
        gateway_aid="123456",
        api_keys="a-long-secret-value:merchant",
        gateway_base_url="https://credit.j-payment.co.jp",
        search_api_base_url="https://api.j-payment.co.jp",
        search_api_key="real-key",
        kickback_secret="k" * 32,
        webhook_secret_key="w" * 32,
    )
    assert s.gateway_aid != SANDBOX_AID
    assert not s.sandbox_in_process


@pytest.mark.parametrize(
    "raw", ["nocolon", "short:merchant", "a-long-secret-value:admin", "a-long-secret-value:"]
)
def test_bad_api_keys_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="API_KEYS"):
        parse_api_keys(raw)


def test_uvicorn_exits_with_a_clear_message_in_live_mode_without_config(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "API_KEYS"))}
    env["GATEWAY_MODE"] = "live"
    proc = subprocess.run(
        [sys.executable, "-c", "import app.main as m; m.app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "GATEWAY_MODE=live refuses to start" in proc.stderr
    assert "GATEWAY_AID" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_search_api_defaults_to_a_standalone_simulator_api() -> None:
    standalone = Settings(_env_file=None, gateway_base_url="http://127.0.0.1:8101/")
    assert standalone.search_api_url == "http://127.0.0.1:8101/api"
    explicit = Settings(
        _env_file=None,
        gateway_base_url="http://127.0.0.1:8101",
        search_api_base_url="http://127.0.0.1:9000/api",
    )
    assert explicit.search_api_url == "http://127.0.0.1:9000/api"
    assert Settings(_env_file=None).search_api_url == ""  # in-process: the app wires it


@pytest.mark.parametrize(("raw", "mode"), [("0", 0), ("1", 1), (" 0 ", 0)])
def test_result_mode_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, mode: int
) -> None:
    monkeypatch.setenv("GATEWAY_RESULT_MODE", raw)
    assert Settings(_env_file=None).gateway_result_mode == mode
    monkeypatch.setenv("GATEWAY_RESULT_MODE", "2")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
