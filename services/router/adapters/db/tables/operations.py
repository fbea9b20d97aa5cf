"""SLA timers, surveys, API keys, the audit log, erasures, dead letters and outgoing webhook deliveries."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    null,
    select,
    text,
    union_all,
)
from sqlalchemy.sql import Select

from services.router.adapters.db.tables.context import conversations
from services.router.adapters.db.tables.sla_slots import FIELDS, SLOTS, field, live
from services.router.adapters.db.tables.types import TS, Id, Seq, metadata, tenant_reference

sla_timers = Table(
    "sla_timers",
    metadata,
    # The promises settled: a clock stopped (answered, resolved) leaves its conversation's slot
    # (tables/sla_slots.py) for a row here, met or missed, which the KPIs count. A running clock is on its
    # conversation; ``sla_clocks`` below reads both.
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("conversation_id", Id, nullable=False),
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
    tenant_reference("conversation_id", "conversations", ondelete="CASCADE"),
    Index(None, "tenant_id", "conversation_id"),
)


def _running(slot: str) -> Select[Any]:
    c = conversations
    return select(
        c.c.tenant_id,
        c.c.id.label("conversation_id"),
        *(field(c, slot, name).label(name) for name in FIELDS),
        cast(null(), TS).label("stopped_at"),
        cast(null(), Boolean).label("met"),
    ).where(live(c, slot))


# The clocks running (or paused) on conversations, one row per clock with sla_timers' columns: what the desk's
# views read. Filtered by tenant and conversation, each part is read by its key.
sla_running = union_all(*(_running(slot) for slot in SLOTS)).subquery("sla_running")
# Every clock, running or settled: what the KPIs count.
_s = sla_timers.c
sla_clocks = union_all(
    select(_s.tenant_id, _s.conversation_id, *(_s[name] for name in FIELDS), _s.stopped_at, _s.met),
    *(_running(slot) for slot in SLOTS),
).subquery("sla_clocks")

surveys = Table(
    "surveys",
    metadata,
    # CSAT / NPS / CES, sent on resolve on the customer's channel; the token is the answer link's credential.
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("conversation_id", Id, nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("agent_id", Id),
    Column("kind", String(8), nullable=False),
    Column("channel", String(16), nullable=False),
    # the answer link's credential, so looked up without a tenant (an index of its own); unique with the tenant
    # like every key here, and across tenants by its randomness (128 bits)
    Column("token", String(64), nullable=False, index=True),
    Column("sent_at", TS, nullable=False),
    Column("score", Integer),
    Column("comment", Text),
    Column("answered_at", TS),
    UniqueConstraint("tenant_id", "token"),
    tenant_reference("conversation_id", "conversations", ondelete="CASCADE"),
    Index(None, "tenant_id", "customer_id", "sent_at"),
    Index(None, "tenant_id", "conversation_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(256), nullable=False),
    Column("prefix", String(16), nullable=False),
    # a request's key is looked up before its tenant is known (an index of its own); unique with the tenant
    # like every key here, and across tenants by its randomness (256 bits)
    Column("key_hash", String(64), nullable=False, index=True),
    Column("role", String(16), nullable=False),
    Column("agent_id", Id),  # role agent: whom the key acts as
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
    UniqueConstraint("tenant_id", "key_hash"),
)

audit_log = Table(
    "audit_log",
    metadata,
    # Who read or changed what: every authenticated API call but message ingestion, with the route (a template,
    # never a query string) and the ids in its path.
    Column("tenant_id", String(64), nullable=False),
    Column("seq", Seq, nullable=False, server_default=FetchedValue()),
    Column("actor", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("method", String(8), nullable=False),
    Column("route", String(255), nullable=False),
    Column("target", JSON, nullable=False),
    Column("status", Integer, nullable=False),
    Column("at", TS, nullable=False),
    PrimaryKeyConstraint("tenant_id", "seq"),
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
    Column("tenant_id", String(64), primary_key=True),  # "" when no tenant can be read from the record
    Column("id", Id, primary_key=True),
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
    UniqueConstraint("tenant_id", "dl_topic", "dl_partition", "dl_offset"),
    Index(None, "tenant_id", "deadlettered_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    # One routing event to one webhook receiver, from the moment the router consumed it until the receiver took
    # it, or it was given up and waits in the dead-letter list (state "failed") for a supervisor to redeliver.
    # Durable: a router restart loses none (services/router/handlers/webhook_deliveries.py).
    Column("tenant_id", String(64), nullable=False),
    Column("seq", Seq, nullable=False, server_default=FetchedValue()),  # the order they were queued in
    Column("id", Id, nullable=False),
    Column("deployment", String(255), nullable=False),  # topic prefix + consumer group: whose loop sends it
    Column("url", String(2048), nullable=False),
    Column("event_id", String(64), nullable=False),  # the Switchboard-Event-Id header: receivers dedupe by it
    Column("event_type", String(32), nullable=False),
    Column("conversation_id", String(64)),
    # deliveries of one key to one receiver go out one at a time, in seq order: the conversation, or the agent
    # for events of none (presence)
    Column("ordering_key", String(128), nullable=False),
    Column("body", LargeBinary, nullable=False),  # the record's bytes as produced, signed at each attempt
    Column("state", String(16), nullable=False),  # pending, delivered, failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("created_at", TS, nullable=False),
    Column("window_from", TS, nullable=False),  # the retry window's start: queued, or last redelivered
    Column("next_attempt_at", TS),  # pending only
    Column("lease_until", TS),  # a loop is sending it: no other takes it before then
    Column("last_attempt_at", TS),
    Column("last_status", Integer),  # the receiver's HTTP status; NULL when none came
    Column("last_error", Text),
    Column("finished_at", TS),  # delivered or failed
    Column("redeliveries", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "deployment", "url", "event_id"),  # a record consumed twice is queued once
    Index(
        "ix_webhook_deliveries_due",
        "deployment",
        "next_attempt_at",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index(
        "ix_webhook_deliveries_pending_chain",
        "deployment",
        "url",
        "ordering_key",
        "seq",
        postgresql_where=text("state = 'pending'"),
        sqlite_where=text("state = 'pending'"),
    ),
    Index(None, "tenant_id", "state", "created_at"),
    Index(None, "finished_at"),
    PrimaryKeyConstraint("tenant_id", "seq"),
)

# Numbered by PostgreSQL's sequences; SQLite numbers no column of a two-column primary key, so inserts there
# number each row past the highest seq (adapters/db/bulk.py ``numbered``), which its single writer makes safe.
for _table in (audit_log, webhook_deliveries):
    _table.info["seq_shared_with"] = (_table.name,)
