"""The merchant's branding (SHOP_NAME, SHOP_LOGO_URL, SHOP_ACCENT_COLOR): what the settings
accept, the pages' CSP for the logo, the accent's readable shade and stylesheet, and the one
rule a saved card is shown by."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from app.security_headers import page_headers
from app.web.cards import card_brand, card_label
from app.web.theme import THEME_PATH, branding, contrast_with_white, readable_accent, theme_css

LIVE: dict[str, Any] = {
    "gateway_mode": "live",
    "gateway_aid": "123456",
    "api_keys": "a-long-secret-value:merchant",
    "gateway_base_url": "https://credit.j-payment.co.jp",
    "search_api_base_url": "https://api.j-payment.co.jp",
    "search_api_key": "real-key",
    "kickback_secret": "k" * 32,
    "webhook_secret_key": "w" * 32,
}


def _img_src(settings: Settings) -> str:
    csp = page_headers(settings)["Content-Security-Policy"]
    (img,) = [d.strip() for d in csp.split(";") if d.strip().startswith("img-src ")]
    return img


def test_branding_defaults_to_the_generic_page() -> None:
    s = Settings(_env_file=None)
    assert (s.shop_name, s.shop_logo_url, s.shop_accent_color) == ("", "", "")
    assert branding(s).theme_url == ""
    assert _img_src(s) == "img-src 'self' data:"


@pytest.mark.parametrize("value", ["#0B5CAD", " #0b5cad ", "#0b5cad"])
def test_an_accent_colour_is_taken_as_rrggbb(value: str) -> None:
    assert Settings(_env_file=None, shop_accent_color=value).shop_accent_color == "#0b5cad"


@pytest.mark.parametrize(
    "value", ["red", "#fff", "0b5cad", "#0b5cag", "#0b5cad0", "rgb(1,2,3)", "#0b5cad;}"]
)
def test_anything_else_is_a_settings_error_naming_the_variable(value: str) -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, shop_accent_color=value)
    assert "SHOP_ACCENT_COLOR must be a colour written #rrggbb" in str(info.value)


def test_the_shop_name_is_one_line() -> None:
    assert Settings(_env_file=None, shop_name="  抹茶本舗  ").shop_name == "抹茶本舗"
    with pytest.raises(ValidationError, match="SHOP_NAME"):
        Settings(_env_file=None, shop_name="two\nlines")


@pytest.mark.parametrize(
    ("url", "img_src"),
    [
        ("/static/shop/logo.svg", "img-src 'self' data:"),
        ("https://cdn.shop.example/img/logo.png", "img-src 'self' data: https://cdn.shop.example"),
        (
            "https://CDN.Shop.Example:8443/logo.svg?v=2",
            "img-src 'self' data: https://cdn.shop.example:8443",
        ),
        ("http://127.0.0.1:5001/logo.svg", "img-src 'self' data: http://127.0.0.1:5001"),
    ],
)
def test_the_csp_allows_the_logos_origin_and_nothing_more(url: str, img_src: str) -> None:
    s = Settings(_env_file=None, shop_logo_url=url)
    assert _img_src(s) == img_src
    # Only img-src changes: scripts, styles and frames stay ours and the gateway's.
    plain = page_headers(Settings(_env_file=None))["Content-Security-Policy"]
    assert (
        page_headers(s)["Content-Security-Policy"].replace(img_src, "img-src 'self' data:") == plain
    )


@pytest.mark.parametrize(
    "url",
    [
        "//evil.example/logo.png",  # scheme-relative: another origin
        "/\\evil.example/logo.png",  # browsers read \ as /
        "logo.png",
        "javascript:alert(1)",
        "data:image/svg+xml,<svg/>",
        "ftp://shop.example/logo.png",
        "https://user@shop.example/logo.png",
        "https://shop.example;script-src */logo.png",
        "https://shop example/logo.png",
        "https://shop.example",
        "https://shop.example:99999/logo.png",
    ],
)
def test_a_logo_elsewhere_or_odd_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="SHOP_LOGO_URL must be a path on this server"):
        Settings(_env_file=None, shop_logo_url=url)


def test_live_refuses_a_logo_over_plain_http() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, **LIVE, shop_logo_url="http://shop.example/logo.png")
    assert "SHOP_LOGO_URL (https://" in str(info.value)
    for url in ("https://shop.example/logo.png", "/static/shop/logo.png"):
        assert Settings(_env_file=None, **LIVE, shop_logo_url=url).shop_logo_url == url


def test_a_dark_accent_is_used_as_it_is() -> None:
    assert readable_accent("#0b5cad") == "#0b5cad"
    assert readable_accent("#6b2f8a") == "#6b2f8a"


@pytest.mark.parametrize("light", ["#ffcc00", "#ffffff", "#7fd1ff", "#3aa757"])
def test_a_light_accent_is_darkened_just_enough_for_white_text(light: str) -> None:
    shade = readable_accent(light)
    assert shade != light
    assert contrast_with_white(shade) >= 4.5
    css = theme_css(light)
    assert f"--c-brand: {shade};" in css and f"darkened to {shade}" in css


def test_the_theme_names_the_shades_checkout_css_uses() -> None:
    css = theme_css("#6b2f8a")
    for prop in (
        "--c-brand:",
        "--c-brand-dark:",
        "--c-brand-soft:",
        "--c-brand-muted:",
        "--focus:",
    ):
        assert prop in css
    assert "--c-brand: #6b2f8a;" in css and "rgba(107, 47, 138, 0.35)" in css
    assert theme_css("") == ""


async def test_the_theme_is_a_cacheable_stylesheet_of_our_origin() -> None:
    settings = Settings(
        _env_file=None, api_keys="a-long-secret-value:merchant", shop_accent_color="#6b2f8a"
    )
    app = create_app(settings)
    theme_url = branding(settings).theme_url
    assert theme_url.startswith(THEME_PATH + "?v=")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.get(theme_url)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/css")
        assert "--c-brand: #6b2f8a;" in r.text
        assert (
            "max-age" in r.headers["cache-control"] and "no-store" not in r.headers["cache-control"]
        )
        assert r.headers["x-content-type-options"] == "nosniff"
        again = await client.get(THEME_PATH, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        # The rest of /static is still the files.
        assert (await client.get("/static/checkout/brands/visa.svg")).status_code == 200
    # Another colour is another URL: a cached old theme is never used for it.
    other = Settings(_env_file=None, shop_accent_color="#224466")
    assert branding(other).theme_url != theme_url


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("************0317", "\u2022\u2022\u2022\u2022 0317"),
        ("***********0005", "\u2022\u2022\u2022\u2022 0005"),
        ("411111******1111", "\u2022\u2022\u2022\u2022 1111"),
        ("xxxx-xxxx-xxxx-4242", "\u2022\u2022\u2022\u2022 4242"),
        ("", None),
        (None, None),
        ("***", "***"),
    ],
)
def test_a_saved_card_reads_four_bullets_and_its_last_four(
    stored: str | None, shown: str | None
) -> None:
    assert card_label(stored) == shown


@pytest.mark.parametrize(
    ("stored", "brand"),
    [
        ("************0317", "generic"),
        (None, "generic"),
        ("411111******1111", "visa"),
        ("555555******4444", "mastercard"),
        ("222300******0000", "mastercard"),
        ("378282*****0005", "amex"),
        ("353011******0000", "jcb"),
        ("305693****5904", "diners"),
        ("601100******0000", "generic"),
    ],
)
def test_a_saved_cards_mark_is_its_brand_when_its_first_digits_are_shown(
    stored: str | None, brand: str
) -> None:
    assert card_brand(stored) == brand
