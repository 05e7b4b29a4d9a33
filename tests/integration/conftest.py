"""Integration fixtures: the shared ones (tests/support/fixtures.py) - a migrated PostgreSQL
database, the gateway simulator as a real process over HTTP, the app under a real uvicorn."""

from tests.support.fixtures import (  # noqa: F401 (pytest finds fixtures by name)
    db_url,
    engine,
    make_app,
    sbps_sim,
    sbps_simulator_url,
    sessions,
    sim,
    simulator_url,
)
