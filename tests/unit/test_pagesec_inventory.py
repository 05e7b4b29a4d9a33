"""The script inventory (PCI DSS 6.4.3): every payment page's scripts, both providers."""

from __future__ import annotations

import base64
import hashlib

from app.config import Settings
from app.pagesec.inventory import STATIC_DIR, gateway_scripts, inventory, scripts_for


def _keys(settings: Settings, page: str) -> list[str]:
    return [s.key for s in scripts_for(settings, page)]  # type: ignore[arg-type]


def test_robotpayment_sandbox_pages_load_the_gateway_scripts_then_ours() -> None:
    s = Settings(_env_file=None)
    assert _keys(s, "checkout") == ["cptoken", "emv3ds_adapter", "checkout_js"]
    assert _keys(s, "card") == _keys(s, "billing_card") == _keys(s, "checkout")
    assert _keys(s, "tds") == ["emv3ds_adapter", "checkout_js"]
    assert _keys(s, "result") == ["result_js"]
    urls = {x.key: x.url for x in inventory(s)}
    assert urls["cptoken"] == "/sandbox/gateway/js/CPToken.js"
    assert urls["checkout_js"] == "/static/checkout/checkout.js"


def test_the_real_gateway_adds_its_jquery() -> None:
    s = Settings(_env_file=None, gateway_base_url="https://credit.j-payment.co.jp")
    assert _keys(s, "checkout") == ["vendor_jquery", "cptoken", "emv3ds_adapter", "checkout_js"]
    assert [x.url for x in gateway_scripts(s)] == [
        "https://credit.j-payment.co.jp/gateway/js/jquery.js",
        "https://credit.j-payment.co.jp/gateway/js/CPToken.js",
        "https://credit.j-payment.co.jp/gateway/js/EMV3DSAdapter.js",
    ]


def test_sbps_pages_load_its_token_script() -> None:
    s = Settings(
        _env_file=None,
        gateway_provider="sbps",
        sbps_token_js_url="https://token.sps-system.com/sbpstoken/com_sbps_system_token.js",
    )
    assert _keys(s, "checkout") == ["sbps_token", "sbps_tds2_info", "checkout_js"]
    # 3-D Secure is SBPS's redirect: the page that sends the shopper on loads three_ds.js only.
    assert _keys(s, "tds_redirect") == ["three_ds_js"]
    assert _keys(s, "card") == ["sbps_token", "checkout_js"]
    token, _ = gateway_scripts(s)
    assert token.url == "https://token.sps-system.com/sbpstoken/com_sbps_system_token.js"


def test_every_entry_is_justified_and_ours_carry_the_served_files_hash() -> None:
    for s in (Settings(_env_file=None), Settings(_env_file=None, gateway_provider="sbps")):
        for script in inventory(s):
            assert script.purpose and script.justification and script.pages, script.key
            if script.party == "gateway":
                assert script.sri is None
                continue
            served = (STATIC_DIR / script.url.removeprefix("/static/")).read_bytes()
            digest = base64.b64encode(hashlib.sha384(served).digest()).decode()
            assert script.sri == f"sha384-{digest}"
