"""``GET /metrics`` in the Prometheus text format, for every service (prometheus_client's registry)."""

from __future__ import annotations

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest

# Connectors: what came in on each channel (produced to the bus) and replies that failed for good.
RECEIVED = Counter("switchboard_received_events_total", "Conversation events produced by connectors.", ["channel"])
OUTBOUND_FAILURES = Counter(
    "switchboard_outbound_failures_total", "Replies whose delivery failed for good, per channel.", ["channel"]
)
DEADLETTERED = Counter(
    "switchboard_deadlettered_total",
    "Records sent to the dead-letter topic, by source topic and kind (invalid: refused by the schema; otherwise "
    "the class of the error that made the record impossible to apply).",
    ["topic", "kind"],
)
CONSUMER_LAG = Gauge(
    "switchboard_consumer_lag", "Records not yet consumed, per topic and consumer group.", ["topic", "group"]
)


def install(app: FastAPI) -> None:
    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition format (unauthenticated, like /healthz: keep it on the internal port)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
