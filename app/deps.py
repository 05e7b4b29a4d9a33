"""Typed dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.gateway.base import PaymentGateway

# Dependencies are `async def` even when they do no I/O: FastAPI runs plain `def` ones in a
# thread pool, a thread hop per request for a dictionary look-up.


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return factory


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    # Services commit explicitly; anything left open is rolled back here.
    async with request.app.state.sessions() as session:
        yield session


async def get_gateway(request: Request) -> PaymentGateway:
    gateway: PaymentGateway = request.app.state.gateway
    return gateway


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SessionFactoryDep = Annotated[async_sessionmaker[AsyncSession], Depends(get_sessionmaker)]
GatewayDep = Annotated[PaymentGateway, Depends(get_gateway)]
