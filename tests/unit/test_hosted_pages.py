"""The page dispatch table serves every kind of hosted page."""

from __future__ import annotations

from app.checkout.pages import PAGES
from app.hosted.models import Kind


def test_every_kind_has_a_page_handler() -> None:
    assert set(PAGES) == set(Kind)
