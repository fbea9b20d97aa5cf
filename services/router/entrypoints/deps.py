"""Typed FastAPI dependencies, all resolved from the composition root stored on app.state."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from starlette.exceptions import HTTPException

from services.router.adapters.api_keys import Principal
from services.router.bootstrap import Router
from services.router.domain.rate_limits import retry_after_header


def get_router(request: Request) -> Router:
    router: Router = request.app.state.router
    return router


RouterDep = Annotated[Router, Depends(get_router)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="switchboard"'}


async def get_principal(
    router: RouterDep,
    authorization: Annotated[str | None, Header()] = None,
    access_token: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> Principal:
    """``Authorization: Bearer <key>``. Browsers' EventSource cannot set headers, so the SSE feed also
    takes ``?access_token=`` (the OAuth 2.0 bearer-token query convention, RFC 6750 §2.3)."""
    token: str | None = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise HTTPException(401, "Use 'Authorization: Bearer <api key>'.", headers=_CHALLENGE)
        token = value.strip()
    elif access_token:
        token = access_token
    if not token:
        raise HTTPException(401, "Missing credentials.", headers=_CHALLENGE)
    principal = await router.keys.verify(token)
    if principal is None:
        raise HTTPException(401, "Unknown or revoked API key.", headers=_CHALLENGE)
    wait = router.limiter.take(principal.key_prefix, time.monotonic())
    if wait > 0:
        raise HTTPException(
            429, "Too many requests for this API key; retry later.", headers={"Retry-After": retry_after_header(wait)}
        )
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: str) -> object:
    async def check(principal: PrincipalDep) -> Principal:
        if principal.role not in roles:
            raise HTTPException(403, f"This needs one of the roles: {', '.join(roles)}.")
        return principal

    return Depends(check)


AppPrincipal = Annotated[Principal, require("app", "admin")]
StaffPrincipal = Annotated[Principal, require("agent", "supervisor", "admin")]
