"""Reliability fixtures: the same real PostgreSQL, simulator process and uvicorn-served app as
the integration tier (tests/support/fixtures.py)."""

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
