"""PostgreSQL / SQLite schema of the router (SQLAlchemy Core), one module per area; ``tables.<name>`` reaches
every table. Migrations in migrations/versions/ follow it; tests/integration/test_migrations.py checks they agree."""

from __future__ import annotations

from services.router.adapters.db.tables.context import (
    conversations,
    customers,
    identities,
    merges,
    messages,
    suggestions,
    tenants,
    timeline,
)
from services.router.adapters.db.tables.operations import (
    api_keys,
    audit_log,
    deadletters,
    erasures,
    sla_clocks,
    sla_running,
    sla_timers,
    surveys,
    webhook_deliveries,
)
from services.router.adapters.db.tables.routing import (
    agent_connections,
    agent_events,
    agents,
    assignments,
    outbox,
    queues,
    routing_commands,
    routing_profiles,
)
from services.router.adapters.db.tables.types import TS, Id, Seq, UtcDateTime, metadata

__all__ = [
    "TS",
    "Id",
    "Seq",
    "UtcDateTime",
    "agent_connections",
    "agent_events",
    "agents",
    "api_keys",
    "assignments",
    "audit_log",
    "conversations",
    "customers",
    "deadletters",
    "erasures",
    "identities",
    "merges",
    "messages",
    "metadata",
    "outbox",
    "queues",
    "routing_commands",
    "routing_profiles",
    "sla_clocks",
    "sla_running",
    "sla_timers",
    "suggestions",
    "surveys",
    "tenants",
    "timeline",
    "webhook_deliveries",
]
