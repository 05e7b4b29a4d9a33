"""How far a leased sweep over the gateway's records has got (one row per sweep)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class SweepCursor(Base):
    __tablename__ = "sweep_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Everything the gateway created before this instant has been looked at.
    position: Mapped[datetime]
    # The replica running the sweep holds it until then; the token fences its writes.
    lease_until: Mapped[datetime | None]
    lease_token: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
