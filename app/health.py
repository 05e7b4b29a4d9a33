"""Liveness, readiness (the database answers and its schema is at head) and Prometheus."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app import schema
from app.errors import ServiceUnavailable

router = APIRouter(tags=["infra"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers and its schema is at head")
async def readyz(request: Request) -> dict[str, str]:
    try:
        state = await schema.check(request.app.state.engine)
    except Exception as exc:  # any driver error means "not ready"
        raise ServiceUnavailable("The database is not reachable.") from exc
    request.app.state.schema_problem = state.message if state.behind else None
    if state.behind:
        raise ServiceUnavailable(f"Not ready: {state.message}.", code="schema_not_at_head")
    return {"status": "ready", "database": "ok", "schema": ", ".join(state.current)}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    state = request.app.state
    await state.db_gauges.refresh(state.sessions)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
