"""The pure rules of webhooks: where a delivery may go, how it is signed and verified, the
retry schedule, the secrets' encryption and rotation."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from app.events import addresses, signing
from app.events.dispatch import MAX_BACKOFF, backoff
from app.events.secrets import SecretBox, new_secret


@pytest.mark.parametrize(
    ("url", "live", "problem"),
    [
        ("https://shop.example/hooks", True, None),
        ("http://shop.example/hooks", False, None),
        ("http://shop.example/hooks", True, "https:// URL in live mode"),
        ("ftp://shop.example/", False, "https:// URL"),
        ("https://u:p@shop.example/", False, "user name"),
        ("https:///hooks", False, "must name a host"),
        ("https://shop.example/#x", False, "#fragment"),
        ("https://shop.example:99999/", False, "not a valid URL"),
        ("https://[::1/", False, "not a valid URL"),
        ("https://bad_host!.example/", False, "invalid host name"),
        ("https://例え.jp/hooks", True, None),
    ],
)
def test_url_rules(url: str, live: bool, problem: str | None) -> None:
    got = addresses.url_problem(url, live=live)
    assert (got is None) if problem is None else (got is not None and problem in got)


@pytest.mark.parametrize(
    ("host", "loopback", "allowed"),
    [
        ("8.8.8.8", False, True),
        ("2001:4860:4860::8888", False, True),
        ("127.0.0.1", True, True),
        ("127.0.0.1", False, False),
        ("::1", False, False),
        ("10.0.0.1", True, False),
        ("172.16.5.5", True, False),
        ("192.168.1.1", True, False),
        ("169.254.169.254", True, False),
        ("fe80::1", True, False),
        ("fd00::1", True, False),
        ("::ffff:10.0.0.1", True, False),
        ("0.0.0.0", True, False),
        ("100.64.0.1", True, False),  # carrier-grade NAT
        ("224.0.0.1", True, False),
    ],
)
async def test_addresses(host: str, loopback: bool, allowed: bool) -> None:
    literal = f"[{host}]" if ":" in host else host
    url = f"https://{literal}/hooks"
    if allowed:
        assert await addresses.resolve(url, allow_loopback=loopback) == host
    else:
        with pytest.raises(addresses.AddressRefused):
            await addresses.resolve(url, allow_loopback=loopback)


def test_signature_verifies_only_these_bytes_this_secret_recently() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"id":"evt_1"}'
    now = int(time.time())
    header = signing.header([new, old], now, body)
    assert header.startswith(f"t={now},v1=") and header.count("v1=") == 2
    assert signing.verify(new, header, body) and signing.verify(old, header, body)
    assert not signing.verify(new_secret(), header, body)
    assert not signing.verify(new, header, body + b"\n")
    assert not signing.verify(new, header.replace(f"t={now}", f"t={now + 1}"), body)
    stale = signing.header([new], now - 301, body)
    assert not signing.verify(new, stale, body)
    assert not signing.verify(new, "", body) and not signing.verify(new, "v1=abc", body)


def test_backoff_doubles_with_jitter_up_to_an_hour() -> None:
    for n in range(1, 30):
        d = backoff(n, 30.0)
        ideal = min(30.0 * 2 ** (n - 1), MAX_BACKOFF.total_seconds())
        assert timedelta(seconds=ideal * 0.75) <= d <= timedelta(seconds=ideal * 1.25)


def test_secrets_are_sealed_and_survive_a_key_rotation() -> None:
    secret = new_secret()
    first = SecretBox("key-one-0123456789abcdef0123456789")
    sealed = first.seal(secret)
    assert secret not in sealed and first.open(sealed) == secret
    rotated = SecretBox("key-two-0123456789abcdef0123456789,key-one-0123456789abcdef0123456789")
    assert rotated.open(sealed) == secret
    rewrapped = rotated.rewrap(sealed)
    assert SecretBox("key-two-0123456789abcdef0123456789").open(rewrapped) == secret
    with pytest.raises(ValueError, match="WEBHOOK_SECRET_KEY"):
        SecretBox("another-key-entirely-000000000000").open(sealed)
