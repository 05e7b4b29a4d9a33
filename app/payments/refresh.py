"""One payment re-checked against the gateway's charges search, on demand (a retry of the
Idempotency-Key whose first answer was lost re-checks its payment before answering).

The judgement is reconciliation's, which sits above payments: the composition root (app.main)
installs it as `app.state.refresh_payment`, so payments never imports reconcile.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.gateway.base import PaymentGateway
from app.payments.models import Payment


class Refresh(Protocol):
    async def __call__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        gateway: PaymentGateway,
        payment_id: str,
    ) -> Payment | None:
        """The payment after one look at the charges search (if it was pending or unknown);
        None if there is no such payment."""
        ...


def refresher(request: Request) -> Refresh:
    refresh: Refresh = request.app.state.refresh_payment
    return refresh


RefreshDep = Annotated[Refresh, Depends(refresher)]
