"""The payment pages' CSP (app/pagesec/csp.py): exactly the inventory's scripts plus a nonce,
3-D Secure's frames, and where reports go."""

from __future__ import annotations

from app.config import Settings
from app.pagesec.csp import new_nonce, page_scripts, policy


def _directives(csp: str) -> dict[str, list[str]]:
    parts = (d.strip().split() for d in csp.split(";") if d.strip())
    return {p[0]: p[1:] for p in parts}


def test_script_src_is_the_nonce_and_exactly_the_inventorys_urls() -> None:
    s = Settings(_env_file=None, gateway_base_url="https://credit.j-payment.co.jp")
    d = _directives(policy(s, "checkout", "n0nce"))
    assert d["script-src"] == [
        "'nonce-n0nce'",
        "https://credit.j-payment.co.jp/gateway/js/jquery.js",
        "https://credit.j-payment.co.jp/gateway/js/CPToken.js",
        "https://credit.j-payment.co.jp/gateway/js/EMV3DSAdapter.js",
        "http://127.0.0.1:8000/static/checkout/checkout.js",
    ]
    assert d["frame-src"] == ["'self'", "https://credit.j-payment.co.jp", "https:"]
    assert d["default-src"] == ["'none'"] and d["object-src"] == ["'none'"]
    result = _directives(policy(s, "result", "n0nce"))
    assert result["script-src"] == [
        "'nonce-n0nce'",
        "http://127.0.0.1:8000/static/checkout/result.js",
    ]
    assert result["frame-src"] == ["'none'"]
    for csp in (policy(s, "checkout", "x"), policy(s, "result", "x")):
        assert "'unsafe-inline'" not in csp and "'strict-dynamic'" not in csp
        assert "'unsafe-eval'" not in csp


def test_sbps_pages_frame_nothing_but_sbps() -> None:
    url = "https://token.sps-system.com/sbpstoken/com_sbps_system_token.js"
    s = Settings(_env_file=None, gateway_provider="sbps", sbps_token_js_url=url)
    d = _directives(policy(s, "card", "n"))
    assert d["script-src"] == [
        "'nonce-n'",
        url,
        "http://127.0.0.1:8000/static/checkout/checkout.js",
    ]
    assert d["frame-src"] == ["'self'", "https://token.sps-system.com"]


def test_reports_go_to_our_collector_and_report_to_only_over_https() -> None:
    plain = page_scripts(Settings(_env_file=None), "checkout")
    assert _directives(plain.headers["Content-Security-Policy"])["report-uri"] == ["/csp-reports"]
    assert "report-to" not in plain.headers["Content-Security-Policy"]
    assert "Reporting-Endpoints" not in plain.headers
    live = page_scripts(Settings(_env_file=None, public_base_url="https://pay.shop.example"), "tds")
    d = _directives(live.headers["Content-Security-Policy"])
    assert d["report-uri"] == ["/csp-reports"] and d["report-to"] == ["csp"]
    assert live.headers["Reporting-Endpoints"] == 'csp="https://pay.shop.example/csp-reports"'


def test_every_page_gets_a_fresh_nonce_on_every_tag() -> None:
    s = Settings(_env_file=None)
    one, two = page_scripts(s, "checkout"), page_scripts(s, "checkout")
    assert one.nonce != two.nonce and len(one.nonce) >= 22
    assert f"'nonce-{one.nonce}'" in one.headers["Content-Security-Policy"]
    assert [t.src for t in one.tags] == [
        "/sandbox/gateway/js/CPToken.js",
        "/sandbox/gateway/js/EMV3DSAdapter.js",
        "/static/checkout/checkout.js",
    ]
    (ours,) = [t for t in one.tags if t.integrity]
    assert ours.src.startswith("/static/") and (ours.integrity or "").startswith("sha384-")
    assert not ours.crossorigin, "same origin: SRI needs no CORS"
    assert len({new_nonce() for _ in range(100)}) == 100
