"""Traces across REST → Kafka → router → feed (OpenTelemetry), off by default.

With SWITCHBOARD_OTLP_ENDPOINT set, each service exports its spans over OTLP/HTTP: the HTTP request that took a
message (``POST /v1/messages``, or a connector's webhook), the router's context stage that stored and routed
it, and the delivery of the offer or assignment it caused to the agent's feed. The trace context travels as a
W3C ``traceparent`` in the conversation event's Kafka headers, and on to the feed event (its ``traceparent``
field), so all three share one trace id. The HTTP server spans are FastAPI's own (it traces requests once a
tracer provider is set, continuing an incoming ``traceparent``).

While off, nothing is parsed or injected: the hot path pays one boolean test per message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
_HEADERS = ("traceparent", "tracestate")
_on = False

tracer = trace.get_tracer("switchboard")


def enabled() -> bool:
    return _on


def enable(on: bool = True) -> None:
    """Trace from now on (the spans go to the global tracer provider: ``configure``'s, or a test's)."""
    global _on
    _on = on


def configure(endpoint: str | None, service_name: str) -> None:
    """Export this process's spans to ``endpoint`` (an OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces);
    nothing for None. Once per process (OpenTelemetry's provider is global): the services of one process share
    the first one's name."""
    if not endpoint or _on:
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    enable()


def context_of(carrier: Mapping[str, str]) -> Context | None:
    """The trace context a carrier (HTTP headers, a feed event's fields) continues; None if it has none."""
    found = {k: carrier[k] for k in _HEADERS if carrier.get(k)}
    return _PROPAGATOR.extract(found) if found else None


def context_of_headers(headers: Iterable[tuple[str, bytes]]) -> Context | None:
    """The trace context in Kafka record headers."""
    return context_of({k: v.decode("latin-1") for k, v in headers if k in _HEADERS})


def traceparent(span: Span | None = None) -> str | None:
    """``span``'s (else the current span's) context as a W3C traceparent; None when not tracing."""
    if not _on:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span) if span is not None else None)
    return carrier.get("traceparent")


def headers() -> tuple[tuple[str, bytes], ...]:
    """The current trace context as Kafka record headers (none when not tracing)."""
    value = traceparent()
    return (("traceparent", value.encode()),) if value else ()


def start(name: str, parent: Context | None, kind: SpanKind = SpanKind.INTERNAL, **attributes: Any) -> Span:
    """A span to end by hand (batches: one per message, all ended when the batch is done)."""
    return tracer.start_span(name, context=parent, kind=kind, attributes=attributes or None)
