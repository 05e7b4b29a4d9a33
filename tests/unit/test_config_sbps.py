"""Settings with GATEWAY_PROVIDER=sbps: sandbox needs nothing, live names every SBPS setting
it lacks and refuses the sandbox values."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.config import (
    SANDBOX_SBPS_HASH_KEY,
    SBPS_PRODUCTION_API_URL,
    SBPS_TEST_API_URL,
    Settings,
)
from app.security_headers import page_headers

# Everything live needs apart from SBPS (test_config.py's live values).
_LIVE_BASE: dict[str, Any] = {
    "gateway_mode": "live",
    "gateway_provider": "sbps",
    "api_keys": "sk_live_merchant_key_1:merchant",
    "kickback_secret": "k" * 40,
    "webhook_secret_key": "w" * 40,
}
_SBPS_NAMES = (
    "SBPS_MERCHANT_ID",
    "SBPS_SERVICE_ID",
    "SBPS_HASH_KEY",
    "SBPS_API_URL",
    "SBPS_TOKEN_JS_URL",
)


def test_default_provider_is_robotpayment() -> None:
    s = Settings(_env_file=None)
    assert s.gateway_provider == "robotpayment"
    assert not s.sbps_in_process
    assert s.page_script_base == "/sandbox"


def test_sandbox_sbps_runs_on_the_in_process_simulator() -> None:
    s = Settings(_env_file=None, gateway_provider="sbps")
    assert s.sbps_in_process
    assert s.sbps_token_js == "/sandbox-sbps/sbpstoken/com_sbps_system_token.js"
    # Our own origin: the CSP's 'self' covers it, nothing else is let in.
    csp = page_headers(s)["Content-Security-Policy"]
    assert "script-src 'self';" in csp


def test_a_standalone_sbps_simulator_serves_its_token_script() -> None:
    s = Settings(
        _env_file=None,
        gateway_provider="sbps",
        sbps_api_url="http://127.0.0.1:9100/api/xmlapi.do",
    )
    assert not s.sbps_in_process
    assert s.sbps_api_root == "http://127.0.0.1:9100"
    assert s.sbps_token_js == "http://127.0.0.1:9100/sbpstoken/com_sbps_system_token.js"
    assert "script-src 'self' http://127.0.0.1:9100;" in page_headers(s)["Content-Security-Policy"]


def test_live_sbps_refuses_to_start_without_its_settings() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, **_LIVE_BASE)
    text = str(info.value)
    for name in _SBPS_NAMES:
        assert name in text
    # ROBOT PAYMENT's own settings are not asked for when it is not the provider.
    assert "GATEWAY_AID" not in text
    assert "SEARCH_API_KEY" not in text


def test_live_sbps_refuses_the_sandbox_values_and_the_secret_is_never_shown() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(
            _env_file=None,
            **_LIVE_BASE,
            sbps_api_url="http://127.0.0.1:9100/api/xmlapi.do",
            sbps_token_js_url="http://127.0.0.1:9100/sbpstoken/com_sbps_system_token.js",
        )
    text = str(info.value)
    for name in _SBPS_NAMES:
        assert name in text
    assert SANDBOX_SBPS_HASH_KEY not in text


def test_live_sbps_starts_when_everything_is_set() -> None:
    s = Settings(
        _env_file=None,
        **_LIVE_BASE,
        sbps_merchant_id="12345",
        sbps_service_id="001",
        sbps_hash_key="live0hash0key0" + "x" * 26,
        sbps_api_url=SBPS_PRODUCTION_API_URL,
        sbps_token_js_url="https://token.sps-system.com/sbpstoken/com_sbps_system_token.js",
    )
    assert s.sbps_api_root == "https://api.sps-system.com"
    csp = page_headers(s)["Content-Security-Policy"]
    assert "script-src 'self' https://token.sps-system.com;" in csp
    assert SBPS_TEST_API_URL.endswith("/api/xmlapi.do")


@pytest.mark.parametrize(
    ("field", "value", "name"),
    [
        ("sbps_merchant_id", "1234", "SBPS_MERCHANT_ID"),
        ("sbps_service_id", "01", "SBPS_SERVICE_ID"),
        ("sbps_hash_key", " key ", "SBPS_HASH_KEY"),
        ("sbps_api_url", "https://api.sps-system.com/", "SBPS_API_URL"),
        ("sbps_token_js_url", "ftp://x/com_sbps_system_token.js", "SBPS_TOKEN_JS_URL"),
        ("sbps_item_id", "a b", "SBPS_ITEM_ID"),
    ],
)
def test_bad_shapes_are_refused_naming_the_setting(field: str, value: str, name: str) -> None:
    with pytest.raises(ValidationError) as info:
        overrides: dict[str, Any] = {field: value}
        Settings(_env_file=None, gateway_provider="sbps", **overrides)
    assert name in str(info.value)


def test_the_page_gets_a_readable_message_for_every_token_error_code() -> None:
    from app.gateway import page_messages
    from app.gateway.sbps.token_errors import KNOWN_CODES

    assert page_messages(Settings(_env_file=None)) == {}
    by_lang = page_messages(Settings(_env_file=None, gateway_provider="sbps"))
    assert set(by_lang) == {"ja", "en"}
    for lang, texts in by_lang.items():
        assert all(key.startswith("js_err_sbps_") for key in texts)
        assert {f"js_err_sbps_{code}" for code in KNOWN_CODES} <= set(texts)
        # The unknown code's message names it through the script's {code} placeholder.
        assert "{code}" in texts["js_err_sbps_unknown"], lang
    assert by_lang["ja"]["js_err_sbps_05003"] == "カード番号の桁数が正しくありません。"
    assert by_lang["en"]["js_err_sbps_03005"] == "Please enter the security code."


async def test_build_gateway_builds_sbps_and_no_orphan_sweep_for_it() -> None:
    import httpx

    from app.gateway import build_gateway
    from app.gateway.sbps import SbpsGateway
    from app.main import _sweep_settings

    sbps_settings = Settings(_env_file=None, gateway_provider="sbps")
    async with httpx.AsyncClient() as http:
        gateway = build_gateway(
            sbps_settings, http, recorder=None, base_url="http://sbps.internal/", search_url=""
        )
        assert isinstance(gateway, SbpsGateway)
        # SBPS has no range search: the sweep is off rather than failing every interval.
        assert _sweep_settings(sbps_settings, gateway) is None
        rp_settings = Settings(_env_file=None)
        rp = build_gateway(
            rp_settings, http, recorder=None, base_url="http://x/", search_url="http://x/api"
        )
        assert not isinstance(rp, SbpsGateway)
        assert _sweep_settings(rp_settings, rp) is not None
