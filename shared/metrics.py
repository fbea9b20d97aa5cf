"""``GET /metrics`` in the Prometheus text format, for every service (prometheus_client's registry)."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import Message, Receive, Scope, Send

from shared.http_middleware import HttpMiddleware

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
# A consume loop takes what arrived while its last batch was handled, so its batches grow with the load: their
# size says how close the loop is to what it can take (batches near SWITCHBOARD_CONSUMER_BATCH_MAX: saturated),
# and their handling time is what every record of the batch waited on top of its fetch.
CONSUMER_BATCH_SECONDS = Histogram(
    "switchboard_consumer_batch_seconds",
    "Time to handle one fetched batch (every lane, until it may be committed), per consumer group.",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CONSUMER_BATCH_RECORDS = Histogram(
    "switchboard_consumer_batch_records",
    "Records per fetched batch, per consumer group.",
    ["group"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
HTTP_DURATION = Histogram(
    "switchboard_http_request_duration_seconds",
    "HTTP requests by method, route template (unmatched: no route) and status code; a stream (SSE) counts "
    "until it closes.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestTimer(HttpMiddleware):
    """Times each HTTP request into HTTP_DURATION. The route template (``scope["route"]``, set by the router)
    keeps the label set bounded."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        status = 500  # what a request that raised before answering ends as

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            observe_request(scope["method"], route, status, time.perf_counter() - start)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """One request into HTTP_DURATION (also for a path that answers ahead of RequestTimer: fast_ingest)."""
    key = (method, route, status)
    timer = _TIMERS.get(key)
    if timer is None:  # the child's lookup validates and locks: once per label set, not per request
        timer = _TIMERS[key] = HTTP_DURATION.labels(method, route, str(status))
    timer.observe(seconds)


# HTTP_DURATION's children by (method, route, status): as many as the metric itself holds
_TIMERS: dict[tuple[str, str, int], Histogram] = {}


def install(app: FastAPI) -> None:
    app.add_middleware(RequestTimer)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus text exposition format (unauthenticated, like /healthz: keep it on the internal port)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
