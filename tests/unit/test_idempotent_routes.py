"""The idempotent route is one dependency: every route that takes an Idempotency-Key takes it
through app.idempotency.Idempotent (never its own header and its own run_idempotent closure)."""

from __future__ import annotations

from typing import get_args

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.config import Settings
from app.idempotency import Idempotent
from app.main import create_app

KEYED = {
    ("POST", "/v1/checkout/sessions"),
    ("POST", "/v1/payments"),
    ("POST", "/v1/payments/{payment_id}/capture"),
    ("POST", "/v1/payments/{payment_id}/cancel"),
    ("POST", "/v1/payments/{payment_id}/reauthorize"),
    ("POST", "/v1/payments/{payment_id}/resolve"),
    ("POST", "/v1/customers"),
    ("POST", "/v1/customers/{uid}/cards"),
    ("POST", "/v1/customers/{uid}/card-sessions"),
    ("POST", "/v1/billing/payment-methods/credit-card"),
    ("POST", "/v1/billing/card-sessions"),
}


# The function behind `Idempotent = Annotated[IdempotentRoute, Depends(...)]`.
_DEPENDENCY = get_args(Idempotent)[1].dependency


def _uses_dependency(dependant: Dependant) -> bool:
    return any(d.call is _DEPENDENCY for d in dependant.dependencies)


def test_every_keyed_route_takes_the_key_through_the_one_dependency() -> None:
    app = create_app(Settings(_env_file=None, api_keys="a-long-secret-value:merchant"))
    keyed: set[tuple[str, str]] = set()
    for context in iter_route_contexts(app.routes):  # included routers' routes too
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        own = [p.alias for p in route.dependant.header_params]
        assert "Idempotency-Key" not in own, f"{context.path} declares the header itself"
        if _uses_dependency(route.dependant):
            keyed |= {(m, str(context.path)) for m in route.methods or ()}
    assert keyed == KEYED
