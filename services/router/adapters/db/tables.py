"""PostgreSQL / SQLite schema of the router (SQLAlchemy Core). Migrations in migrations/versions/ follow it;
tests/integration/test_migrations.py checks they agree."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = String(36)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both databases (SQLite keeps no zone: values come back naive, read as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


TS = UtcDateTime()
# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Seq = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", TS, nullable=False),
    # Fences the in-memory routing state: bumped by every routing transaction; a process whose cached state
    # carries another number rebuilds it from the database first.
    Column("routing_version", BigInteger, nullable=False, server_default=text("0")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("agent_id", Id),  # role agent: whom the key acts as
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
)

customers = Table(
    "customers",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(256)),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("language", String(35)),  # BCP 47 tag
    Column("tier", String(16), nullable=False, server_default="standard"),
    Column("tags", JSON, nullable=False, server_default=text("'[]'")),
    Column("consent", JSON, nullable=False, server_default=text("'{}'")),
    Column("attributes", JSON, nullable=False, server_default=text("'{}'")),
    Column("merged_into", Id),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS),
    Column("erased_at", TS),  # GDPR erasure: personal data removed, the row kept for counts
    Index(None, "tenant_id", "created_at"),
)

identities = Table(
    "identities",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", String(512), nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    # One owner per identity: the database, not luck, keeps two consumers from creating two customers.
    UniqueConstraint("tenant_id", "kind", "value"),
    Index(None, "customer_id"),
)

queues = Table(
    "queues",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("channels", JSON, nullable=False),
    Column("is_default", Boolean, nullable=False, default=False),
    # How the queue routes: rule, strategy, offers, overflow, business hours, required skills
    # (see entrypoints/http/configuration.py).
    Column("routing", JSON, nullable=False, server_default=text("'{}'")),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("tenant_id", "name"),
)

agents = Table(
    "agents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("presence", String(16), nullable=False),
    Column("capacity", JSON, nullable=False),
    Column("queue_ids", JSON, nullable=False),
    Column("skills", JSON, nullable=False, server_default=text("'{}'")),  # skill → level
    Column("languages", JSON, nullable=False, server_default=text("'[]'")),
    # Where a phone call is put through to: "client:<identity>" (Twilio Client / softphone) or an E.164 number.
    Column("voice_endpoint", String(128)),
    Column("last_assigned_at", TS),
    Column("created_at", TS, nullable=False),
    Index(None, "tenant_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), ForeignKey("tenants.id"), nullable=False),
    Column("customer_id", Id, ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("queue_id", Id),
    Column("agent_id", Id),
    Column("opened_at", TS, nullable=False),
    Column("queued_at", TS),
    Column("assigned_at", TS),
    Column("last_message_at", TS, nullable=False),
    Column("resolved_at", TS),
    Column("resolution_note", Text),
    Column("reopened_at", TS),
    Column("previous_conversation_id", Id),
    Column("merged_into", Id),
    # The lifecycle the KPIs are computed from.
    Column("first_response_at", TS),
    Column("awaiting", String(16)),  # agent | customer: whose turn it is
    Column("pending_since", TS),  # waiting on the customer: the resolution clock is paused
    Column("escalated_at", TS),
    Column("abandoned_at", TS),  # a caller hung up while waiting
    Column("erased_at", TS),  # personal data blanked (erasure or retention)
    # By default one open conversation per customer across channels.
    Index(
        "uq_conversations_open_per_customer",
        "tenant_id",
        "customer_id",
        unique=True,
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    Index(None, "tenant_id", "queue_id", "queued_at"),
    Index(None, "customer_id", "status", "resolved_at"),
    Index(None, "tenant_id", "opened_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", Id, nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False),
    Column("event_id", String(512), nullable=False),
    Column("conversation_id", Id, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("direction", String(16), nullable=False),
    Column("channel_message_id", String(512)),
    Column("sender_kind", String(32), nullable=False),
    Column("thread_ref", String(512)),
    Column("author", String(64)),  # outbound: who wrote it (an agent id or key prefix)
    Column("status", String(16)),  # outbound: queued, sent, delivered, failed
    Column("error", Text),  # outbound: why delivery failed
    Column("subject", Text),
    Column("text", Text, nullable=False),
    # references to what came with it (blobs, provider URLs such as a voicemail's recording), never bytes
    Column("attachments", JSON, nullable=False, server_default=text("'[]'")),
    Column("sent_at", TS),
    Column("received_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    # What the edge changed so the store could hold it (shared/events.py Sanitized): NULs removed, a sent_at
    # outside the plausible window replaced. NULL when nothing changed.
    Column("sanitized", JSON),
    # The idempotency key: a redelivered event is recognised, never stored twice.
    UniqueConstraint("tenant_id", "event_id"),
    Index(None, "conversation_id", "seq"),
)

assignments = Table(
    "assignments",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", Id, nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False),
    Column("conversation_id", Id, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("agent_id", Id, ForeignKey("agents.id"), nullable=False),
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
        "conversation_id",
        unique=True,
        postgresql_where=text("ended_at IS NULL"),
        sqlite_where=text("ended_at IS NULL"),
    ),
    Index(None, "agent_id", "seq"),
)

agent_events = Table(
    "agent_events",
    metadata,
    # An agent's feed, in order: offers, assignments, unassignments, new messages in their conversations.
    # seq is the SSE/WebSocket event id a console resumes from.
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", Id, nullable=False, unique=True),
    Column("tenant_id", String(64), nullable=False),
    Column("agent_id", Id, nullable=False),
    Column("type", String(32), nullable=False),
    Column("conversation_id", Id),
    Column("data", JSON, nullable=False, default=dict),
    Column("at", TS, nullable=False),
    Index(None, "agent_id", "seq"),
)

sla_timers = Table(
    "sla_timers",
    metadata,
    # One promise on one conversation. Durable: a restart loses none, and warned_at / breached_at are set in
    # the transaction that publishes the event, so none fires twice.
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("conversation_id", Id, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("queue_id", Id),
    Column("target_s", Float, nullable=False),
    Column("started_at", TS, nullable=False),
    Column("warn_at", TS, nullable=False),
    Column("due_at", TS, nullable=False),
    Column("paused_at", TS),
    Column("remaining_s", Float),
    Column("warned_at", TS),
    Column("breached_at", TS),
    Column("stopped_at", TS),
    Column("met", Boolean),
    Index(None, "conversation_id"),
    Index(
        "ix_sla_timers_live_warn_at",
        "warn_at",
        postgresql_where=text("stopped_at IS NULL"),
        sqlite_where=text("stopped_at IS NULL"),
    ),
    Index(
        "ix_sla_timers_live_due_at",
        "due_at",
        postgresql_where=text("stopped_at IS NULL"),
        sqlite_where=text("stopped_at IS NULL"),
    ),
)

surveys = Table(
    "surveys",
    metadata,
    # CSAT / NPS / CES, sent on resolve on the customer's channel; the token is the answer link's credential.
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("conversation_id", Id, ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("agent_id", Id),
    Column("kind", String(8), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("sent_at", TS, nullable=False),
    Column("score", Integer),
    Column("comment", Text),
    Column("answered_at", TS),
    Index(None, "customer_id", "sent_at"),
    Index(None, "conversation_id"),
)

timeline = Table(
    "timeline",
    metadata,
    # One customer's history across channels: messages and lifecycle events in one totally ordered stream,
    # so keyset pagination by seq is stable while new entries arrive.
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("conversation_id", Id),
    Column("kind", String(32), nullable=False),
    Column("message_id", Id),
    Column("channel", String(16)),
    Column("at", TS, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index(None, "customer_id", "seq"),
)

suggestions = Table(
    "suggestions",
    metadata,
    # "These two may be one person": from unverified claims, never merged automatically.
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("other_customer_id", Id, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", String(512), nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("customer_id", "other_customer_id", "kind", "value"),
    Index(None, "other_customer_id"),
)

merges = Table(
    "merges",
    metadata,
    # What a merge moved, exactly, so that unmerge can move it back.
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("survivor_id", Id, nullable=False),
    Column("merged_id", Id, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("record", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("undone_at", TS),
    Index(None, "survivor_id", "merged_id"),
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
    Column("id", String(64), primary_key=True),
    Column("tenant_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Index(None, "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Who read or changed what: every authenticated API call but message ingestion, with the route (a template,
    # never a query string) and the ids in its path.
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("tenant_id", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("method", String(8), nullable=False),
    Column("route", String(255), nullable=False),
    Column("target", JSON, nullable=False),
    Column("status", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Index(None, "tenant_id", "seq"),
)

erasures = Table(
    "erasures",
    metadata,
    # Keyed hashes of erased customers' identifiers: events from them received before erased_at are dropped,
    # so replaying Kafka cannot bring an erased customer back. Never the identifiers themselves.
    Column("tenant_id", String(64), primary_key=True),
    Column("digest", String(64), primary_key=True),
    Column("erased_at", TS, nullable=False),
)

deadletters = Table(
    "deadletters",
    metadata,
    # The dead-letter topic as people read it: every record a consumer could never apply (or a schema refused),
    # its original bytes and why, per tenant, until an admin redrives it after a fix or it ages out
    # (SWITCHBOARD_DEADLETTER_RETENTION_DAYS).
    Column("id", Id, primary_key=True),
    Column("tenant_id", String(64), nullable=False),  # "" when no tenant can be read from the record
    Column("topic", String(255), nullable=False),  # where it came from (a topic, or a connector's webhook)
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("key", LargeBinary),
    Column("value", LargeBinary, nullable=False),
    Column("reason", Text, nullable=False),
    Column("kind", String(100), nullable=False),
    Column("deadlettered_at", TS, nullable=False),
    Column("redriven_at", TS),
    Column("redrives", Integer, nullable=False, server_default=text("0")),
    # where it sits on the dead-letter topic: a redelivered dead-letter record is stored once
    Column("dl_topic", String(255), nullable=False),
    Column("dl_partition", Integer, nullable=False),
    Column("dl_offset", BigInteger, nullable=False),
    UniqueConstraint("dl_topic", "dl_partition", "dl_offset"),
    Index(None, "tenant_id", "deadlettered_at"),
)
