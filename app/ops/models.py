"""A signed-in ops console session: the browser holds a random token, we keep its digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class OpsSession(Base):
    __tablename__ = "ops_sessions"

    # SHA-256 hex of the cookie's token: a leaked table signs nobody in.
    token_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    # Who signed in: the API key's label (the trail's actor is "ops:<label>").
    key_label: Mapped[str] = mapped_column(String(64))
    # The forms' CSRF token (sent in each form, compared with this one).
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
