"""Shared fixtures: a real PostgreSQL for the whole run (TEST_DATABASE_URL or a throwaway one)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support import pg


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    server = pg.start_server()
    try:
        yield server.url
    finally:
        pg.destroy(server)
