"""Prometheus series of the router (text format at /metrics). Module-level, as prometheus_client intends:
one registry per process."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

INGESTED = Counter("switchboard_ingested_messages_total", "Messages stored by the router, per channel.", ["channel"])
ROUTING_DECISIONS = Counter("switchboard_routing_decisions_total", "Routing engine decisions, per kind.", ["decision"])
QUEUE_WAITING = Gauge(
    "switchboard_queue_waiting",
    "Conversations waiting, per tenant and queue (routing state held here).",
    ["tenant", "queue"],
)
SLA_EVENTS = Counter("switchboard_sla_events_total", "SLA warnings and breaches fired.", ["stage", "kind"])
ROUTING_REBUILDS = Counter(
    "switchboard_routing_rebuilds_total",
    "Tenant routing engines rebuilt from PostgreSQL (ownership moved here, or the fence saw another writer).",
)
ROUTING_OWNED = Gauge(
    "switchboard_routing_owned_tenants", "Tenants whose routing engine this replica holds (it owns their partition)."
)
ROUTING_PARTITIONS = Gauge(
    "switchboard_routing_partitions", "Partitions of the routing command log this replica owns now."
)
