"""Prometheus series of the router (text format at /metrics). Module-level, as prometheus_client intends:
one registry per process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from services.router.domain.routing.decisions import Assigned, Decision, Offered
from services.router.domain.routing.engine import RoutingEngine

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

# What operators set SLOs on. Waits span seconds (chat) to a day (email); the pipeline's latency milliseconds.
WAIT_FOR_AGENT = Histogram(
    "switchboard_wait_for_agent_seconds",
    "How long a conversation waited in its queue for an agent (queued → assigned or accepted), per channel.",
    ["channel"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600),
)
INGEST_TO_ASSIGNMENT = Histogram(
    "switchboard_ingest_to_assignment_seconds",
    "From a customer's message reaching Switchboard (its received_at) to its conversation's offer or assignment, "
    "for conversations a message brought to routing.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# A conversation is "served" when it leaves the queue for an agent; a transfer between agents is not a wait.
_SERVED = frozenset({"routed", "accepted", "sticky", "claimed"})


def observe_routing(
    engine: RoutingEngine, decisions: Sequence[Decision], causes: Mapping[str, Mapping[str, str]], now: datetime
) -> None:
    """The histograms of one routing transaction's assignments (and offers, for the pipeline's latency)."""
    for d in decisions:
        if not isinstance(d, Assigned | Offered):
            continue
        if isinstance(d, Assigned) and d.reason in _SERVED:
            work = engine.work(d.conversation_id)
            if work is not None:
                WAIT_FOR_AGENT.labels(channel=d.channel).observe(max(0.0, d.at - work.enqueued_at))
        received = causes.get(d.conversation_id, {}).get("received_at")
        if received:  # only in the transaction the message arrived in: the first offer or assignment
            INGEST_TO_ASSIGNMENT.observe(max(0.0, (now - datetime.fromisoformat(received)).total_seconds()))
