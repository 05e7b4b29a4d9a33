"""The merchant's branding on the shopper's pages: the shop's name and logo for the header,
and SHOP_ACCENT_COLOR as a small stylesheet of our own origin (`GET /static/theme.css`), so
the pages' CSP keeps `style-src 'self'` with no inline style.

The stylesheet only sets the custom properties static/checkout/checkout.css already uses
(`--c-brand` and its shades): it is linked after that file and wins."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from fastapi import APIRouter, Request, Response

from app.config import Settings

THEME_PATH = "/static/theme.css"
# White text on a button (and a link on a white page) needs this contrast (WCAG 2 AA, body
# text): 4.5 : 1.
MIN_CONTRAST = 4.5

Rgb = tuple[int, int, int]


def _rgb(color: str) -> Rgb:
    value = color.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _hex(rgb: Rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _luminance(rgb: Rgb) -> float:
    """WCAG 2 relative luminance of an sRGB colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_with_white(color: str) -> float:
    """The contrast ratio of white text on `color` (1 to 21)."""
    return 1.05 / (_luminance(_rgb(color)) + 0.05)


def _mix(rgb: Rgb, other: Rgb, share: float) -> Rgb:
    """`rgb` with `share` (0..1) of `other` mixed in."""
    r, g, b = (round(c + (o - c) * share) for c, o in zip(rgb, other, strict=True))
    return r, g, b


def readable_accent(color: str) -> str:
    """`color` itself when white text on it is readable; else `color` darkened (mixed with
    black, step by step: the same hue, only deeper) until it is. Darkened rather than given
    dark text: the pay button's white label and spinner stay as designed, and the same colour
    works for links on the white page (the same 4.5 : 1 against white)."""
    rgb = _rgb(color)
    share = 0.0
    while contrast_with_white(_hex(_mix(rgb, (0, 0, 0), share))) < MIN_CONTRAST:
        share += 0.02
    return _hex(_mix(rgb, (0, 0, 0), share))


@lru_cache(maxsize=8)
def theme_css(accent: str) -> str:
    """The stylesheet for SHOP_ACCENT_COLOR `accent` (#rrggbb); "" without one. The shades
    follow the default palette's: hover 20% darker, soft backgrounds 90% white, disabled 45%
    white, the focus ring at 35% opacity."""
    if not accent:
        return ""
    brand = readable_accent(accent)
    rgb = _rgb(brand)
    r, g, b = rgb
    lines = [
        f"/* SHOP_ACCENT_COLOR {accent}"
        + (f", darkened to {brand} for readable white text" if brand != accent else "")
        + " */",
        ":root {",
        f"  --c-brand: {brand};",
        f"  --c-brand-dark: {_hex(_mix(rgb, (0, 0, 0), 0.2))};",
        f"  --c-brand-soft: {_hex(_mix(rgb, (255, 255, 255), 0.9))};",
        f"  --c-brand-muted: {_hex(_mix(rgb, (255, 255, 255), 0.45))};",
        f"  --focus: 0 0 0 3px rgba({r}, {g}, {b}, 0.35);",
        "}",
        "",
    ]
    return "\n".join(lines)


def _version(css: str) -> str:
    return hashlib.sha256(css.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Branding:
    """What base.html shows of the shop: `name` ("" = the page's generic brand text),
    `logo_url` ("" = the padlock icon), `theme_url` (the accent's stylesheet; "" = none)."""

    name: str
    logo_url: str
    theme_url: str


def branding(settings: Settings) -> Branding:
    css = theme_css(settings.shop_accent_color)
    # The URL names the stylesheet's content: it may be cached long, a new colour is a new URL.
    theme_url = f"{THEME_PATH}?v={_version(css)}" if css else ""
    return Branding(settings.shop_name, settings.shop_logo_url, theme_url)


router = APIRouter()


@router.get(THEME_PATH, include_in_schema=False)
async def theme_stylesheet(request: Request) -> Response:
    """SHOP_ACCENT_COLOR as CSS (empty without one); cacheable, the same for every page."""
    settings: Settings = request.app.state.settings
    css = theme_css(settings.shop_accent_color)
    etag = f'"{_version(css)}"'
    headers = {"Cache-Control": "public, max-age=86400", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(css, media_type="text/css", headers=headers)
