"""API keys from API_KEYS: kept as SHA-256 digests, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.config import ApiKey, Role
from app.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


@dataclass(frozen=True)
class Principal:
    role: Role
    label: str

    @property
    def id(self) -> str:
        return f"{self.role}:{self.label}"


def _match(keys: list[ApiKey], presented: str) -> ApiKey | None:
    digest = hashlib.sha256(presented.encode()).digest()
    found: ApiKey | None = None
    # Compare against every key so timing does not reveal which prefix matched.
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found


def principal_for(keys: list[ApiKey], presented: str) -> Principal | None:
    """Whose key `presented` is (the console's sign-in); None for no key of ours."""
    key = _match(keys, presented)
    return None if key is None else Principal(role=key.role, label=key.label)


async def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> Principal:
    presented = bearer.credentials if bearer else header
    if not presented:
        raise Unauthorized(
            "Send your API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = _match(request.app.state.api_keys, presented)
    if key is None:
        raise Unauthorized("The API key is not valid.", headers={"WWW-Authenticate": "Bearer"})
    return Principal(role=key.role, label=key.label)


def require(role: Role) -> Any:
    """Dependency: the caller must hold `role`; ops may do everything merchant may.

    A `Security` dependency with the role as its scope, so the OpenAPI document names the role
    each operation needs (OpenAPI 3.1 allows role names in a security requirement)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role != role and principal.role != "ops":
            raise Forbidden(f"This endpoint needs the '{role}' role.")
        return principal

    return Security(check, scopes=[role])


MerchantDep = Annotated[Principal, require("merchant")]
OpsDep = Annotated[Principal, require("ops")]
