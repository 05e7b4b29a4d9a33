"""Billing robo: the error table, how an answer is read (always the body, never a guess of
success), Retry-After, and the settings that point the client somewhere."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from app.config import SANDBOX_BILLING_ROBO_ACCESS_KEY, Settings
from app.gateway.base import Outcome
from app.gateway.billingrobo import interpret
from app.gateway.billingrobo.client import retry_after_seconds
from app.gateway.billingrobo.errors import KNOWN_CODES, lookup, outcome_for

OWN = ["3401", "3402", "3403", "3404", "3405", "3406", "3407"]
COMMON = ["1", "10", "11", "12", "13", "14", "16", "17", "18", "19", "20", "21"]
_SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@pytest.mark.parametrize("code", OWN + COMMON)
def test_every_documented_code_has_a_row(code: str) -> None:
    info = KNOWN_CODES[code]
    assert _SNAKE.fullmatch(info.stable_code) and info.message_en and info.message_ja
    assert lookup(int(code)) == info == lookup(f" {code} ")


def test_families() -> None:
    assert {lookup(c).http_status for c in OWN} == {422}
    assert lookup(13).stable_code == "source_ip_rejected"
    assert (lookup(19).http_status, outcome_for(19)) == (503, Outcome.UNAVAILABLE)
    assert lookup("ER584").stable_code == "token_invalid" == lookup(3405).stable_code
    assert outcome_for("ER584") == Outcome.FAILED and outcome_for("ER901") == Outcome.DECLINED
    assert outcome_for("G55") == Outcome.DECLINED and outcome_for(3401) == Outcome.FAILED
    assert lookup(9999).code == "9999" and "9999" in lookup(9999).message_en
    assert lookup("ER777").code == "ER777"


@pytest.mark.parametrize(
    ("status", "body", "outcome", "code"),
    [
        (200, '{"error": null}', Outcome.SUCCESS, None),
        (200, '{"error":{"code":"ER584","message":"x"}}', Outcome.FAILED, "ER584"),
        (400, '{"error":{"code":3404,"message":"x"}}', Outcome.FAILED, "3404"),
        (401, '{"error":{"code":13,"message":"x"}}', Outcome.FAILED, "13"),
        (503, '{"error":{"code":19,"message":"x"}}', Outcome.UNAVAILABLE, "19"),
        (429, "", Outcome.UNAVAILABLE, "rate_limited"),
        # Nothing readable: may have been processed, so unknown, never success.
        (200, "", Outcome.UNKNOWN, "bad_response"),
        (200, "OK", Outcome.UNKNOWN, "bad_response"),
        (200, "{}", Outcome.UNKNOWN, "bad_response"),
        (200, '{"error": {"message": "no code"}}', Outcome.UNKNOWN, "bad_response"),
        (200, '{"error": {"code": true}}', Outcome.UNKNOWN, "bad_response"),
        (500, "<html>oops</html>", Outcome.UNKNOWN, "http_error"),
        (502, '{"error": null}', Outcome.UNKNOWN, "bad_response"),
        # Refused before processing by something that is not billing robo.
        (404, "<html>Not Found</html>", Outcome.FAILED, "http_error"),
        (413, "", Outcome.FAILED, "http_error"),
    ],
)
def test_interpret(status: int, body: str, outcome: Outcome, code: str | None) -> None:
    answer = interpret(status, body)
    assert answer.outcome == outcome
    assert (answer.error.code if answer.error else None) == code
    assert answer.rate_limited == (status == 429)


def test_retry_after() -> None:
    now = datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 31 Dec 2025 23:00:00 GMT", now) == 0.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None


def test_settings_point_to_the_simulator_or_refuse_live() -> None:
    standalone = Settings(_env_file=None, gateway_base_url="http://127.0.0.1:8101")
    assert standalone.billing_robo_url == "http://127.0.0.1:8101"
    assert Settings(_env_file=None).billing_robo_url == ""  # in-process simulator
    live: dict[str, Any] = {
        "gateway_mode": "live",
        "gateway_aid": "123456",
        "api_keys": "a-real-secret-key-1:merchant",
        "gateway_base_url": "https://credit.j-payment.co.jp",
        "search_api_base_url": "https://api.j-payment.co.jp",
        "search_api_key": "real-search-key",
        "kickback_secret": "s" * 32,
        "webhook_secret_key": "w" * 32,
    }
    assert Settings(_env_file=None, **live).billing_robo_url == ""  # not used
    with pytest.raises(ValueError, match="BILLING_ROBO_ACCESS_KEY") as exc:
        Settings(_env_file=None, **live, billing_robo_base_url="https://billing-robo.jp")
    assert "BILLING_ROBO_USER_ID" in str(exc.value)
    ok = Settings(
        _env_file=None,
        **live,
        billing_robo_base_url="https://billing-robo.jp",
        billing_robo_user_id="keiri@shop.example",
        billing_robo_access_key="k" * 32,
    )
    assert ok.billing_robo_url == "https://billing-robo.jp"
    assert SANDBOX_BILLING_ROBO_ACCESS_KEY not in repr(ok)
