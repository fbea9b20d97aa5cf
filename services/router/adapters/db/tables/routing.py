"""Queues, agents, assignments, agents' feeds, the outbox and routing command outcomes."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

from services.router.adapters.db.tables.types import ROOM_FOR_UPDATES, TS, Id, Seq, metadata, tenant_reference

queues = Table(
    "queues",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("is_default", Boolean, nullable=False, default=False),
    # How the queue routes: rule, strategy, offers, overflow, business hours, required skills
    # (see entrypoints/http/configuration.py).
    Column("routing", JSON, nullable=False, server_default=text("'{}'")),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

routing_profiles = Table(
    "routing_profiles",
    metadata,
    # What an agent may hold at once, shared by agents: capacity in units, weights and maxima per channel,
    # exclusive channels (services/router/domain/routing/capacity.py).
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("config", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

agents = Table(
    "agents",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("presence", String(16), nullable=False),
    # Who or what set it (agent, supervisor, missed_offer, disconnected) and when.
    Column("presence_reason", String(32)),
    Column("presence_changed_at", TS),
    Column("capacity", JSON, nullable=False),
    Column("profile_id", Id),  # a routing profile, or none: per-channel counts (capacity)
    Column("queue_ids", JSON, nullable=False),
    Column("skills", JSON, nullable=False, server_default=text("'{}'")),  # skill → level
    Column("languages", JSON, nullable=False, server_default=text("'[]'")),
    # Where a phone call is put through to: "client:<identity>" (Twilio Client / softphone) or an E.164 number.
    Column("voice_endpoint", String(128)),
    Column("last_assigned_at", TS),
    Column("created_at", TS, nullable=False),
)

agent_connections = Table(
    "agent_connections",
    metadata,
    # Live feeds (SSE, WebSocket) per agent, across replicas: each replica refreshes last_seen_at of its own
    # open connections; a replica that died leaves rows that stop being refreshed. Presence is inferred from
    # these (services/router/handlers/presence.py).
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("agent_id", Id, nullable=False),
    Column("replica", String(128), nullable=False),
    # the routers sharing one routing log (topic prefix + consumer group): each infers from its own rows only
    Column("deployment", String(255), nullable=False, server_default=""),
    Column("kind", String(16), nullable=False),
    Column("opened_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("closed_at", TS),
    Index(None, "tenant_id", "agent_id"),
    Index(None, "replica", "closed_at"),
)

assignments = Table(
    "assignments",
    metadata,
    Column("tenant_id", String(64), nullable=False),
    Column("seq", Seq, nullable=False, server_default=FetchedValue()),
    Column("id", Id, nullable=False),
    Column("conversation_id", Id, nullable=False),
    Column("agent_id", Id, nullable=False),
    Column("queue_id", Id, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("assigned_at", TS, nullable=False),
    # An offer holds the agent's capacity until it is accepted (accepted_at) or declined / times out (ended).
    Column("offer_expires_at", TS),
    Column("accepted_at", TS),
    Column("ended_at", TS),
    # Never assigned twice: at most one live assignment per conversation.
    Index(
        "uq_assignments_live_per_conversation",
        "tenant_id",
        "conversation_id",
        unique=True,
        postgresql_where=text("ended_at IS NULL"),
        sqlite_where=text("ended_at IS NULL"),
    ),
    UniqueConstraint("tenant_id", "id"),
    tenant_reference("conversation_id", "conversations", ondelete="CASCADE"),
    tenant_reference("agent_id", "agents"),
    Index(None, "tenant_id", "agent_id", "seq"),
    PrimaryKeyConstraint("tenant_id", "seq"),
    postgresql_with=ROOM_FOR_UPDATES,
)

agent_events = Table(
    "agent_events",
    metadata,
    # An agent's feed, in order: offers, assignments, unassignments, new messages in their conversations.
    # seq is the SSE/WebSocket event id a console resumes from.
    Column("tenant_id", String(64), nullable=False),
    Column("seq", Seq, nullable=False, server_default=FetchedValue()),
    Column("id", Id, nullable=False),
    Column("agent_id", Id, nullable=False),
    Column("type", String(32), nullable=False),
    Column("conversation_id", Id),
    Column("data", JSON, nullable=False, default=dict),
    Column("at", TS, nullable=False),
    UniqueConstraint("tenant_id", "id"),
    Index(None, "tenant_id", "agent_id", "seq"),
    PrimaryKeyConstraint("tenant_id", "seq"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("topic", String(255), nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", TS, nullable=False),
)

routing_commands = Table(
    "routing_commands",
    metadata,
    # The outcome of each command applied from the routing command log, written in the transaction that
    # applied it: a redelivered command is not applied twice, and whoever submitted it reads its result here.
    Column("tenant_id", String(64), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Index(None, "created_at"),
)

# Numbered by PostgreSQL's sequences; SQLite numbers no column of a two-column primary key, so inserts there
# number each row past the highest seq (adapters/db/bulk.py ``numbered``), which its single writer makes safe.
for _table in (assignments, agent_events):
    _table.info["seq_shared_with"] = (_table.name,)
