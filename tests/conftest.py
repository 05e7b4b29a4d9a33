"""Shared fixtures: a real PostgreSQL for the whole run (TEST_DATABASE_URL or a throwaway one)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.support import pg

# Hypothesis's per-example deadline is a timed assertion: on a machine whose two cores run
# three tiers at once it fails examples that are merely slow. Speed is the benchmarks' job.
settings.register_profile("rp", deadline=None)
settings.load_profile("rp")


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
