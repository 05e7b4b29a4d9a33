"""The watcher's hash and compare rules, and the header check's comparisons (no I/O)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from app.config import Settings
from app.pagesec import headercheck, watcher
from app.pagesec.inventory import gateway_scripts, inventory
from app.security_headers import page_headers
from app.web import PageScripts, ScriptTag


def test_sri_sha384_is_the_sri_form_of_the_bytes_digest() -> None:
    body = b"console.log('CPToken');"
    digest = base64.b64encode(hashlib.sha384(body).digest()).decode()
    assert watcher.sri_sha384(body) == f"sha384-{digest}"
    assert watcher.sri_sha384(body + b" ") != watcher.sri_sha384(body)


def test_parse_hash_takes_sri_or_sha384sum_hex() -> None:
    body = b"x"
    sri = watcher.sri_sha384(body)
    assert watcher.parse_hash(sri) == sri
    assert watcher.parse_hash(f"  {hashlib.sha384(body).hexdigest().upper()} ") == sri
    for bad in ("", "sha384-", "sha256-" + sri[7:], "sha384-AAAA", "ab" * 47, "sha384-!!!"):
        with pytest.raises(ValueError, match="SHA-384"):
            watcher.parse_hash(bad)


def test_judge() -> None:
    a, b = watcher.sri_sha384(b"a"), watcher.sri_sha384(b"b")
    assert watcher.judge(a, a) == "ok"
    assert watcher.judge(b, a) == "changed"
    assert watcher.judge(a, None) == "unapproved"


def test_absolute_makes_our_paths_public() -> None:
    assert watcher.absolute("/sandbox/gateway/js/CPToken.js", "https://pay.example/") == (
        "https://pay.example/sandbox/gateway/js/CPToken.js"
    )
    assert watcher.absolute("https://gw.example/js/a.js", "https://pay.example") == (
        "https://gw.example/js/a.js"
    )


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_inventory_lists_each_providers_gateway_scripts() -> None:
    rp = {s.key for s in gateway_scripts(_settings())}
    assert rp == {"cptoken", "emv3ds_adapter"}
    sbps = {s.key for s in gateway_scripts(_settings(gateway_provider="sbps"))}
    assert sbps == {"sbps_token", "sbps_tds2_info"}
    no_tds = _settings(gateway_provider="sbps", sbps_three_ds=False)
    assert {s.key for s in gateway_scripts(no_tds)} == {"sbps_token"}
    assert {"checkout_js", "result_js"} <= {s.key for s in inventory(_settings())}


def test_headers_as_required_have_no_problems() -> None:
    want = page_headers(_settings())
    assert headercheck.compare_headers(dict(want), want, https=False) == []


def test_each_changed_or_missing_header_is_a_problem() -> None:
    want = page_headers(_settings())
    got = {k: v for k, v in want.items() if k != "X-Content-Type-Options"}
    got["Referrer-Policy"] = "unsafe-url"
    got["Content-Security-Policy"] = want["Content-Security-Policy"].replace(
        "frame-ancestors 'none'", "frame-ancestors *"
    )
    problems = headercheck.compare_headers(got, want, https=False)
    assert "X-Content-Type-Options: missing" in problems
    assert any(p.startswith("Referrer-Policy: 'unsafe-url'") for p in problems)
    assert any("frame-ancestors is '*'" in p for p in problems)
    assert len(problems) == 3


def test_csp_compare_ignores_nonces_order_and_case_of_directive_names() -> None:
    csp = "Content-Security-Policy"
    want = {csp: "script-src 'self' 'nonce-abc' https://g.example; base-uri 'none'"}
    got = {csp.lower(): "BASE-URI 'none';  script-src https://g.example 'nonce-xyz' 'self'"}
    assert headercheck.compare_headers(got, want, https=False) == []
    got = {csp: "script-src https://g.example 'self' 'unsafe-inline'; base-uri 'none'"}
    assert headercheck.compare_headers(got, want, https=False) != []


def test_hsts_is_required_on_https_only() -> None:
    want = {"X-Frame-Options": "DENY"}
    got = {"X-Frame-Options": "DENY"}
    assert headercheck.compare_headers(got, want, https=False) == []
    assert headercheck.compare_headers(got, want, https=True) == [
        "Strict-Transport-Security: missing"
    ]
    short = {**got, "Strict-Transport-Security": "max-age=60"}
    assert len(headercheck.compare_headers(short, want, https=True)) == 1
    good = {**got, "Strict-Transport-Security": "max-age=63072000; includeSubDomains"}
    assert headercheck.compare_headers(good, want, https=True) == []


def _expected(*tags: tuple[str, str | None]) -> PageScripts:
    return PageScripts(
        nonce="n",
        tags=tuple(ScriptTag(src=u, integrity=i, crossorigin=False) for u, i in tags),
        headers={},
    )


PAGE = "https://pay.example/checkout/cs_1"
CHECKOUT_JS = ("/static/checkout/checkout.js", "sha384-ours")
CPTOKEN = ("https://gw.example/gateway/js/CPToken.js", None)


def test_page_scripts_are_read_in_order() -> None:
    html = (
        '<html><script src="/static/checkout/checkout.js" integrity="sha384-ours" nonce="n">'
        '</script><script>inline()</script><SCRIPT SRC="https://evil.example/x.js"></SCRIPT>'
    )
    assert headercheck.page_scripts(html) == [
        headercheck.Script("/static/checkout/checkout.js", "sha384-ours", "n"),
        headercheck.Script(None, None, None),
        headercheck.Script("https://evil.example/x.js", None, None),
    ]


@pytest.mark.parametrize(
    ("html", "problems"),
    [
        (
            '<script src="https://gw.example/gateway/js/CPToken.js"></script>'
            '<script src="/static/checkout/checkout.js" integrity="sha384-ours"></script>',
            [],
        ),
        (
            '<script src="https://gw.example/gateway/js/CPToken.js"></script>'
            '<script src="/static/checkout/checkout.js" integrity="sha384-ours"></script>'
            '<script src="https://evil.example/x.js"></script>',
            ["script not in the inventory: https://evil.example/x.js"],
        ),
        (
            '<script src="/static/checkout/checkout.js" integrity="sha384-ours"></script>',
            ["script missing: https://gw.example/gateway/js/CPToken.js"],
        ),
        (
            '<script src="https://gw.example/gateway/js/CPToken.js"></script>'
            '<script src="/static/checkout/checkout.js"></script>',
            ["script without its integrity hash: https://pay.example/static/checkout/checkout.js"],
        ),
        (
            '<script src="/static/checkout/checkout.js" integrity="sha384-ours"></script>'
            '<script src="https://gw.example/gateway/js/CPToken.js"></script>',
            ["scripts in another order than the inventory's"],
        ),
        (
            '<script src="https://gw.example/gateway/js/CPToken.js"></script>'
            '<script src="/static/checkout/checkout.js" integrity="sha384-ours"></script>'
            '<script nonce="n">steal()</script>',
            ["inline script not in the inventory (1)"],
        ),
    ],
)
def test_the_script_compare(html: str, problems: list[str]) -> None:
    found = headercheck.page_scripts(html)
    assert headercheck.compare_scripts(found, _expected(CPTOKEN, CHECKOUT_JS), PAGE) == problems


def test_two_csp_policies_are_drift() -> None:
    want = {"Content-Security-Policy": "default-src 'none'"}
    got = {"Content-Security-Policy": "default-src 'none', default-src *"}
    assert headercheck.compare_headers(got, want, https=False) == [
        "Content-Security-Policy: 2 policies (must be 1)"
    ]
