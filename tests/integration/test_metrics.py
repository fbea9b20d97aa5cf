"""/metrics on the router and on the connectors: Prometheus text format with the series operators alert on."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import http_client
from tests.support.runtime import conversation_of, inbound, publish, serving, wait_for
from tests.support.system import system

ROUTER_SERIES = {
    "switchboard_ingested_messages": "counter",  # per channel
    "switchboard_routing_decisions": "counter",
    "switchboard_queue_waiting": "gauge",
    "switchboard_sla_events": "counter",
    "switchboard_consumer_lag": "gauge",
    "switchboard_consumer_batch_seconds": "histogram",  # how long the loop's batches take, per group
    "switchboard_consumer_batch_records": "histogram",  # how large they grow with the load
}
CONNECTOR_SERIES = {
    "switchboard_received_events": "counter",  # ingest rate per channel at the edge
    "switchboard_outbound_failures": "counter",
    "switchboard_consumer_lag": "gauge",
}


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


async def test_router_and_connectors_expose_the_listed_series(tmp_path: Path) -> None:
    async with system("embedded", tmp_path, names=("chat",)) as s:
        event = inbound(s.tenant, "u-metrics", "hello")
        await publish(s.desk, event)
        await wait_for(lambda: conversation_of(s.desk, event.id))
        async with serving(s.desk.router) as base, http_client() as http:
            r = await http.get(f"{base}/metrics")
            c = await http.get(f"{s.base}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = families(r.text)
    for name, kind in ROUTER_SERIES.items():
        assert name in got and got[name].type == kind, name  # type: ignore[attr-defined]
    samples = {(x.name, tuple(sorted(x.labels.items()))): x.value for x in got["switchboard_ingested_messages"].samples}  # type: ignore[attr-defined]
    assert samples[("switchboard_ingested_messages_total", (("channel", "in_app"),))] >= 1
    decisions = {x.labels.get("decision") for x in got["switchboard_routing_decisions"].samples}  # type: ignore[attr-defined]
    assert {"queued", "assigned"} <= decisions
    waiting = {x.labels["queue"] for x in got["switchboard_queue_waiting"].samples}  # type: ignore[attr-defined]
    assert f"{s.tenant}-q-messaging" in waiting
    assert c.status_code == 200
    got = families(c.text)
    for name, kind in CONNECTOR_SERIES.items():
        assert name in got and got[name].type == kind, name  # type: ignore[attr-defined]
