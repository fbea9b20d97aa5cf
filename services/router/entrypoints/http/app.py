"""The router's FastAPI application: ``create_app(router)``. Routes are thin; the lifespan starts and stops
the router runtime (consumers, relay) around the server."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from services.router.domain.errors import PROBLEMS
from services.router.entrypoints.http import (
    agents,
    app_messages,
    chat_wait,
    configuration,
    conversations,
    customers,
    deadletters,
    desk_views,
    feedback,
    keys_and_audit,
    messages,
    profiles,
    simulations,
    stats,
    web,
    webhook_deliveries,
)
from services.router.entrypoints.http import fast_ingest as fast
from services.router.entrypoints.http.audit_trail import AuditTrail
from services.router.entrypoints.http.deps import RouterDep
from services.router.entrypoints.http.services import Services
from services.router.entrypoints.http.text_guard import TextGuard
from shared import api_docs, metrics, problems
from shared.lifespan import lifespan
from shared.version import VERSION

DESCRIPTION = """Switchboard's REST API. Every `/v1` call needs `Authorization: Bearer <api key or JWT>` (the
**Authorize** button); each operation lists the roles it admits as `x-roles`. Errors are RFC 9457 problems
(`application/problem+json`) whose `type`, `/problems/<slug>`, explains itself: see [/problems](/problems)."""


def create_app(router: Services, *, manage_lifecycle: bool = True, fast_ingest: bool = True) -> FastAPI:
    """``fast_ingest``: ``POST /v1/messages`` answered ahead of the framework where it can be
    (``fast_ingest.py``); without it, by its route alone (which the fast path is tested against)."""
    app = FastAPI(
        title="Switchboard",
        version=VERSION,
        summary="Omnichannel message router for customer care",
        description=DESCRIPTION,
        lifespan=lifespan(router, manage=manage_lifecycle),
        docs_url=None,  # api_docs serves /docs and /redoc without a CDN
        redoc_url=None,
    )
    app.state.router = router
    problems.install(app, PROBLEMS)
    for module in (
        messages,
        conversations,
        customers,
        configuration,
        profiles,
        agents,
        feedback,
        chat_wait,
        app_messages,
        stats,
        keys_and_audit,
        deadletters,
        simulations,
        desk_views,
        webhook_deliveries,
    ):
        _document_roles(module.router.routes)
        problems.document_problems(module.router.routes)
        app.include_router(module.router)
    metrics.install(app)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], response_model=None)
    async def readyz(router_: RouterDep) -> dict[str, str] | JSONResponse:
        """Readiness: started, and the database answers."""
        if not router_.ready:
            return problems.problem(503, "starting or stopping", slug="not-ready", title="Not ready")
        try:
            async with router_.repo.reader() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except Exception as exc:
            return problems.problem(503, f"database: {type(exc).__name__}", slug="not-ready", title="Not ready")
        return {"status": "ready"}

    web.install(app)
    api_docs.install(app)
    app.add_middleware(AuditTrail, router=router)
    app.add_middleware(TextGuard)  # inside BodyLimit: the bodies it reads are bounded
    app.add_middleware(problems.BodyLimit, max_bytes=router.settings.max_body_bytes)
    if fast_ingest:  # outside the rest: it answers only what they would pass on untouched, and times itself
        fast.install(app, router)
    return app


def _document_roles(routes: Sequence[BaseRoute]) -> None:
    """Each operation's OpenAPI entry lists the roles it admits (``x-roles``), read from its ``require``
    dependency: the authorization matrix is published, and tested against the running API."""
    for route in routes:
        if not isinstance(route, APIRoute):
            continue
        roles = _roles_of(route.dependant)
        if roles:
            route.openapi_extra = {**(route.openapi_extra or {}), "x-roles": list(roles)}


def _roles_of(dependant: Dependant) -> tuple[str, ...] | None:
    for dep in dependant.dependencies:
        roles = getattr(dep.call, "roles", None)
        if roles:
            return tuple(roles)
        if (found := _roles_of(dep)) is not None:
            return found
    return None
