"""One message's trace, with tracing on: the HTTP request that took it, the router's context stage that stored and
routed it, and the delivery of its offer to the agent's live feed are spans of one trace (the caller's, when the
request carried a ``traceparent``), each the child of the one before, across the bus (in-process or Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import tracing
from tests.support.runtime import Desk, admin_client, conversation_of, desk_on, wait_for

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (OpenTelemetry allows one) exporting to memory, tracing on for the test."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    tracing.enable()
    try:
        yield _exporter
    finally:
        tracing.enable(False)


@pytest.fixture(params=["embedded", "production"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path, spans: InMemorySpanExporter) -> AsyncIterator[Desk]:
    async with desk_on(request, tmp_path) as d:
        yield d


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(desk) as client:
        yield client


def named(finished: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in finished if s.name == name and f"{s.context.trace_id:032x}" == CALLER_TRACE]


async def test_a_messages_spans_from_the_request_to_the_feed_share_one_trace(
    desk: Desk, api: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    r = await api.post(
        "/v1/messages",
        json={"customer": {"external_id": "u-traced"}, "text": "where is my parcel?"},
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    assert r.status_code == 202, r.text

    async def delivered() -> bool:  # the demo desk offers it to Ada: the offer reaches her live feed
        # the feed span can end before the batch's context span, which encloses it: wait for both
        finished = spans.get_finished_spans()
        return bool(named(finished, "switchboard.feed")) and bool(named(finished, "switchboard.context"))

    await wait_for(delivered)
    finished = spans.get_finished_spans()
    by_id = {s.context.span_id: s for s in finished}

    def ancestors(span: ReadableSpan) -> list[str]:
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    [request] = [s for s in named(finished, "POST /v1/messages") if s.kind is trace.SpanKind.SERVER]
    assert request.parent is not None and f"{request.parent.span_id:016x}" == CALLER_SPAN, "the caller's trace"
    [context] = named(finished, "switchboard.context")
    assert context.kind is trace.SpanKind.CONSUMER and "POST /v1/messages" in ancestors(context)
    feed = named(finished, "switchboard.feed")
    assert feed and all(f.parent is not None and f.parent.span_id == context.context.span_id for f in feed)


async def test_with_tracing_off_the_pipeline_adds_no_span(
    desk: Desk, api: httpx.AsyncClient, spans: InMemorySpanExporter
) -> None:
    tracing.enable(False)
    r = await api.post(
        "/v1/messages",
        json={"customer": {"external_id": "u-untraced"}, "text": "hello"},
        headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    assert r.status_code == 202
    await wait_for(lambda: conversation_of(desk, r.json()["event_id"]))
    # (FastAPI traces requests whenever a tracer provider is set, as this process's is; without
    # SWITCHBOARD_OTLP_ENDPOINT none is, so those cost nothing either)
    assert [s.name for s in spans.get_finished_spans() if s.name.startswith("switchboard.")] == []
