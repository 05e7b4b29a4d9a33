"""What a hosted page's kind must provide: its page, its form post and its status answer.

The table kind -> handler lives in the top page router (app/checkout/pages.py `PAGES`), not
here: app.hosted is low (payments imports it to complete a session) and may not import the
customers or billing packages whose handlers it would hold, while app.checkout may. A
static table there is checked by mypy (every Kind has a handler, see its test) and needs no
registration at start-up, so no request can meet a half-filled table."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.gateway.base import PaymentGateway


@dataclass(frozen=True)
class PageRequest:
    """One browser request to a hosted page `cs_id`, in language `lang`."""

    request: Request
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    gateway: PaymentGateway
    cs_id: str
    lang: str

    @property
    def back(self) -> str:
        """The page itself, in its language (where an error page's "back" goes)."""
        return f"/checkout/{self.cs_id}?lang={self.lang}"

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None


# The form post's fields (strings only), e.g. `tkn`, `card_num`, `save_card`, `lang`.
Form = dict[str, str]


@dataclass(frozen=True)
class PageHandler:
    show: Callable[[PageRequest], Awaitable[HTMLResponse]]
    submit: Callable[[PageRequest, Form], Awaitable[HTMLResponse]]
    # The JSON the page script polls (`GET /checkout/{id}/status`).
    status: Callable[[PageRequest], Awaitable[dict[str, Any]]]
