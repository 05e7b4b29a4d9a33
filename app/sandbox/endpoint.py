"""The common front of every gateway endpoint: read the raw parameters, roll faults (money-moving
endpoints), maintenance (ER999), source IP (ER003), aid (ER050/ER004), connection authentication
(ER001, when configured), a forced error (`_sandbox/errors`), free data size (ER001), then the
endpoint's handler. Any GatewayError becomes the endpoint's own error layout, and an unexpected
exception becomes ER000 in that layout: never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from app.sandbox import connauth, forced, validate
from app.sandbox.codes import GatewayError
from app.sandbox.faults import NO_FAULTS, FaultPlan
from app.sandbox.state import SimState
from app.sandbox.wire import Params, read_pairs

log = logging.getLogger("app.sandbox")

ErrorRenderer = Callable[[Params, str], Response]


@dataclass
class Call:
    sim: SimState
    request: Request
    p: Params
    plan: FaultPlan


Handler = Callable[[Call], Awaitable[Response]]


Route = Callable[[Request], Awaitable[Response]]


def gateway_route(router: APIRouter, path: str) -> Callable[[Route], Route]:
    """POST (documented) and GET (same handler, hidden from OpenAPI to keep operation ids
    unique): the gateway accepts both."""

    def register(route: Route) -> Route:
        router.add_api_route(path, route, methods=["POST"])
        router.add_api_route(path, route, methods=["GET"], include_in_schema=False)
        return route

    return register


def sim_of(request: Request) -> SimState:
    sim: SimState = request.app.state.sim
    return sim


def check_source_ip(sim: SimState, request: Request) -> None:
    allowed = sim.config.allowed_ips
    host = request.client.host if request.client else ""
    if allowed and host not in allowed:
        raise GatewayError("ER003")


async def gateway_endpoint(
    request: Request,
    *,
    known: Iterable[str],
    render_error: ErrorRenderer,
    handler: Handler,
    money: bool,
) -> Response:
    sim = sim_of(request)
    # ut/hak are gateway fields on every endpoint, never free data to echo back.
    known = (*known, *connauth.FIELDS)
    p = Params((), known)
    try:
        p = Params(await read_pairs(request), known)
        plan = sim.faults.roll() if money else NO_FAULTS
        if plan.http_500:
            return PlainTextResponse("Internal Server Error", status_code=500)
        if sim.maintenance:
            raise GatewayError("ER999")
        check_source_ip(sim, request)
        validate.aid(p, sim.config)
        connauth.check(p, sim.config, sim.clock.now())
        code = forced.take(sim.forced_errors, request.url.path.rsplit("/", 1)[-1])
        if code is not None:
            raise GatewayError(code)
        validate.free_data(p)
        return await handler(Call(sim, request, p, plan))
    except GatewayError as exc:
        return render_error(p, exc.code)
    except Exception:
        log.exception("simulator failure on %s", request.url.path)
        return render_error(p, "ER000")
