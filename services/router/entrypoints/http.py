"""The router's FastAPI application: ``create_app(router)``. Routes are thin; the lifespan starts and stops
the router runtime (consumers, relay) around the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.router.bootstrap import Router
from services.router.domain.errors import InvalidCommand, InvalidIdentity, NotFound
from services.router.entrypoints import (
    api_admin,
    api_agents,
    api_customers,
    api_feedback,
    api_messages,
    api_reads,
    api_stats,
    web,
)
from services.router.entrypoints.deps import RouterDep
from shared import metrics, problems


def create_app(router: Router, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await router.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await router.stop()

    app = FastAPI(
        title="Switchboard",
        version="0.1.0",
        summary="Omnichannel message router for customer care",
        lifespan=lifespan,
    )
    app.state.router = router
    problems.install(
        app,
        {
            NotFound: (404, "not-found", "Not found"),
            InvalidIdentity: (422, "invalid-identity", "Invalid identity"),
            InvalidCommand: (409, "invalid-command", "Not allowed in the current state"),
        },
    )
    app.include_router(api_messages.router)
    app.include_router(api_reads.router)
    app.include_router(api_customers.router)
    app.include_router(api_admin.router)
    app.include_router(api_agents.router)
    app.include_router(api_feedback.router)
    app.include_router(api_stats.router)
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
    app.add_middleware(problems.BodyLimit, max_bytes=router.settings.max_body_bytes)
    return app
