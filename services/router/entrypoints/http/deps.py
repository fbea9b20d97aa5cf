"""Typed FastAPI dependencies, all resolved from the composition root stored on app.state."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from services.router.adapters.db.api_keys import Principal
from services.router.adapters.jwt_tokens import looks_like_jwt
from services.router.domain.rate_limits import retry_after_header
from services.router.entrypoints.http.services import Services


async def get_router(request: Request) -> Services:
    """A coroutine, not a plain function: FastAPI runs a plain dependency on a worker thread, a thread hop
    for every request."""
    router: Services = request.app.state.router
    return router


RouterDep = Annotated[Services, Depends(get_router)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="switchboard"'}
# Declares the scheme in the OpenAPI (components.securitySchemes.bearerAuth, and `security` on every operation
# that authenticates), so the API reference's Authorize button sends the key. It refuses nothing itself:
# get_principal reads the header and words each refusal.
BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="An API key of the tenant (sb_…) or, when configured, a JWT from the identity provider.",
    auto_error=False,
)


async def authenticate(router: Services, token: str) -> Principal | None:
    """An API key (``sb_…``) or, when configured, a JWT from the identity provider."""
    if looks_like_jwt(token) and router.tokens.enabled:
        return await router.tokens.verify(token)
    return await router.keys.verify(token)


async def get_principal(
    request: Request,
    router: RouterDep,
    _scheme: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
    access_token: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> Principal:
    """``Authorization: Bearer <key or token>``. Browsers' EventSource cannot set headers, so the SSE feed
    also takes ``?access_token=`` (the OAuth 2.0 bearer-token query convention, RFC 6750 §2.3)."""
    authorization = request.headers.get("authorization")
    token: str | None = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPException(401, "Use 'Authorization: Bearer <api key or token>'.", headers=_CHALLENGE)
        token = value.strip()
    elif access_token:
        token = access_token
    if not token:
        raise HTTPException(401, "Missing credentials.", headers=_CHALLENGE)
    principal = await authenticate(router, token)
    if principal is None:
        raise HTTPException(401, "Unknown, expired or revoked credentials.", headers=_CHALLENGE)
    request.state.principal = principal  # for the audit log
    wait = router.limiter.take(principal.key_prefix, time.monotonic())
    if wait > 0:
        raise HTTPException(
            429, "Too many requests for this API key; retry later.", headers={"Retry-After": retry_after_header(wait)}
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: str) -> Any:
    """A dependency admitting only these roles (403 otherwise); the roles also go into the route's OpenAPI
    operation as ``x-roles``."""

    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"This needs one of the roles: {', '.join(roles)}.")
        return principal

    check.roles = roles  # type: ignore[attr-defined]
    return Depends(check)


APP_ROLES = ("app", "admin")  # post customers' messages for the tenant
STAFF_ROLES = ("agent", "supervisor", "admin")  # agents: their own assignments and conversations only
SUPERVISOR_ROLES = ("supervisor", "admin")  # the tenant's queues, agents, customers and numbers
ADMIN_ROLES = ("admin",)  # tenant configuration: keys, audit log, export and erasure

AppPrincipal = Annotated[Principal, require(*APP_ROLES)]
StaffPrincipal = Annotated[Principal, require(*STAFF_ROLES)]
SupervisorPrincipal = Annotated[Principal, require(*SUPERVISOR_ROLES)]
AdminPrincipal = Annotated[Principal, require(*ADMIN_ROLES)]

# A retried agent command with the same key returns the first outcome instead of running again.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=256,
        description="Retries with the same key return the first outcome instead of running the command again.",
    ),
]
