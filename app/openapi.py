"""The OpenAPI document as the API really answers: every error is problem+json.

FastAPI documents error responses as `application/json` (and 422 with its own
HTTPValidationError shape), while every handler in app/errors.py answers
`application/problem+json` with the Problem body. This rewrites the generated document once
so clients (and the schemathesis suite in tests/reliability) see what is actually sent.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.errors import PROBLEM

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    "400": "The request body could not be read (not JSON, or not UTF-8)",
    "408": "The request body did not arrive in time (REQUEST_BODY_TIMEOUT_SECONDS)",
    "413": "The request body is larger than MAX_REQUEST_BODY_BYTES",
    "401": "Missing or invalid API key",
    "403": "This API key's role may not do this",
    "404": "Not found",
    "409": "Conflict",
    "410": "Gone",
    "422": "The request is not valid (`errors` names each field)",
    "429": "Too many attempts",
}
_METHODS = ("get", "put", "post", "delete", "patch")


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": _PROBLEM_REF}}}


def problem_document(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` with every JSON error response as problem+json; a body that cannot be parsed
    (400), is too large (413) or too slow (408) is documented on each operation that takes
    one."""
    for item in doc.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "requestBody" in operation:
                # app/body_limits.py answers these before the route runs.
                for code in ("400", "408", "413"):
                    responses.setdefault(code, _problem(_DESCRIPTIONS[code]))
            for code, response in list(responses.items()):
                if not code.isdigit() or int(code) < 400:
                    continue
                content = response.get("content")
                # Routes that answer HTML for errors (the checkout page) say so themselves.
                if content and "application/json" not in content and PROBLEM not in content:
                    continue
                description = response.get("description") or _DESCRIPTIONS.get(code, "Error")
                if description in ("Validation Error", "Additional Response"):
                    description = _DESCRIPTIONS.get(code, "Error")
                responses[code] = _problem(description)
    schemas = doc.get("components", {}).get("schemas", {})
    # FastAPI's own 422 shape is never sent (our handler answers a Problem).
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problem_document(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    openapi_version=app.openapi_version,
                    summary=app.summary,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
