"""``GET /metrics`` in the Prometheus text format, for every service (prometheus_client's registry)."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


def install(app: FastAPI) -> None:
    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition format (unauthenticated, like /healthz: keep it on the internal port)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
