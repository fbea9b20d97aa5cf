"""Customers, their identities, conversations, messages and the timeline."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from services.router.adapters.db.tables.sla_slots import pending_indexes, slot_columns
from services.router.adapters.db.tables.types import ROOM_FOR_UPDATES, TS, Id, Seq, metadata, tenant_reference

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("created_at", TS, nullable=False),
    # Fences the in-memory routing state: bumped by every routing transaction; a process whose cached state
    # carries another number rebuilds it from the database first.
    Column("routing_version", BigInteger, nullable=False, server_default=text("0")),
    # The routing engine's own counters (next work sequence number, round-robin cursors), stored with each
    # routing transaction so a rebuild continues exactly (services/router/domain/routing/facts.py).
    Column("routing_state", JSON),
)

customers = Table(
    "customers",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(256)),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("language", String(35)),  # BCP 47 tag
    # set when routing detected the language from the customer's messages (null: the app or an agent set it)
    Column("language_confidence", Float),
    Column("tier", String(16), nullable=False, server_default="standard"),
    Column("tags", JSON, nullable=False, server_default=text("'[]'")),
    Column("consent", JSON, nullable=False, server_default=text("'{}'")),
    Column("attributes", JSON, nullable=False, server_default=text("'{}'")),
    # The agent this customer is assigned to ("their representative"): routing prefers them in every queue.
    Column("owner_agent_id", Id),
    Column("merged_into", Id),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS),
    Column("erased_at", TS),  # GDPR erasure: personal data removed, the row kept for counts
    Index(None, "tenant_id", "created_at"),
    postgresql_with=ROOM_FOR_UPDATES,
)

identities = Table(
    "identities",
    metadata,
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", String(512), nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("created_at", TS, nullable=False),
    # One owner per identity: the database, not luck, keeps two consumers from creating two customers.
    UniqueConstraint("tenant_id", "kind", "value"),
    tenant_reference("customer_id", "customers", ondelete="CASCADE"),
    Index(None, "tenant_id", "customer_id"),
)

conversations = Table(
    "conversations",
    metadata,
    Column("tenant_id", String(64), ForeignKey("tenants.id"), primary_key=True),
    Column("id", Id, primary_key=True),
    # A conversation is its own "opened" entry on its customer's timeline, numbered with the timeline's other
    # entries (ORDERED_WITH_TIMELINE below); NULL for one written before conversations were (none expected).
    Column("seq", Seq),
    Column("opened_channel", String(16)),  # where it started: its "opened" entry says so (``channel`` moves on)
    Column("customer_id", Id, nullable=False),
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
    # Follow-up after a resolution (domain/follow_up.py): when the check-in is due, and when it went.
    Column("follow_up_due_at", TS),
    Column("followed_up_at", TS),
    # The open conversation's routing state as a fact (queue, priority, declines, holds, overflow): the
    # routing engine is a projection of these (services/router/domain/routing/facts.py). Null once resolved.
    Column("routing", JSON),
    # Its SLA clocks while they run (tables/sla_slots.py); settled ones are in sla_timers.
    *slot_columns(),
    # By default one open conversation per customer across channels.
    Index(
        "uq_conversations_open_per_customer",
        "tenant_id",
        "customer_id",
        unique=True,
        postgresql_where=text("status = 'open'"),
        sqlite_where=text("status = 'open'"),
    ),
    tenant_reference("customer_id", "customers", ondelete="CASCADE"),
    Index(None, "tenant_id", "queue_id", "queued_at"),
    Index(None, "tenant_id", "customer_id", "status", "resolved_at"),
    Index(None, "tenant_id", "opened_at"),
    Index(None, "seq"),  # SQLite numbers a new entry past the highest seq (adapters/db/bulk.py)
    Index(
        "ix_conversations_follow_up_due",
        "follow_up_due_at",
        postgresql_where=text("follow_up_due_at IS NOT NULL"),
        sqlite_where=text("follow_up_due_at IS NOT NULL"),
    ),
    postgresql_with=ROOM_FOR_UPDATES,
)
pending_indexes(conversations)

messages = Table(
    "messages",
    metadata,
    # Numbered from the timeline's sequence: a message is its own timeline entry, in the same order as the
    # timeline's other entries (ORDERED_WITH_TIMELINE below).
    Column("tenant_id", String(64), nullable=False),
    Column("seq", Seq, nullable=False, server_default=FetchedValue()),
    Column("id", Id, nullable=False),
    Column("event_id", String(512), nullable=False),
    Column("conversation_id", Id, nullable=False),
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
    # An acknowledgement (handlers/acknowledgements.py) is also the "acknowledged" entry on the timeline, after
    # its own: what it promised (the entry's data beyond the message's id and channel: language, promised_at,
    # opens_at, expected_wait_s, queue_id; NULL once erased, as the entry's data is blanked) and the entry's own
    # number, from the timeline's numbering (``info["second_seq"]`` below). Both NULL for any other message.
    Column("acknowledgement", JSON(none_as_null=True)),
    Column("note_seq", Seq),
    # The idempotency key: a redelivered event is recognised, never stored twice.
    UniqueConstraint("tenant_id", "id"),
    UniqueConstraint("tenant_id", "event_id"),
    tenant_reference("conversation_id", "conversations", ondelete="CASCADE"),
    Index(None, "tenant_id", "conversation_id", "seq"),
    Index(None, "tenant_id", "customer_id", "seq"),  # the customer's timeline
    # the customer's "acknowledged" entries; and the highest one, which SQLite numbers a new entry past
    Index(
        None,
        "tenant_id",
        "customer_id",
        "note_seq",
        postgresql_where=text("note_seq IS NOT NULL"),
        sqlite_where=text("note_seq IS NOT NULL"),
    ),
    Index(None, "note_seq", postgresql_where=text("note_seq IS NOT NULL"), sqlite_where=text("note_seq IS NOT NULL")),
    PrimaryKeyConstraint("tenant_id", "seq"),
)

timeline = Table(
    "timeline",
    metadata,
    # One customer's history across channels: the lifecycle events (assigned, resolved, merged...) here, the
    # messages in ``messages``, each conversation's "opened" in ``conversations``; all take their seq from one
    # sequence, so the three read together are one totally ordered stream and keyset pagination by seq is
    # stable while new entries arrive.
    Column("tenant_id", String(64), nullable=False),
    Column("seq", Seq, nullable=False, server_default=FetchedValue()),
    Column("customer_id", Id, nullable=False),
    Column("conversation_id", Id),
    Column("kind", String(32), nullable=False),
    Column("message_id", Id),
    Column("channel", String(16)),
    Column("at", TS, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
    Index(None, "tenant_id", "customer_id", "seq"),
    PrimaryKeyConstraint("tenant_id", "seq"),
)

suggestions = Table(
    "suggestions",
    metadata,
    # "These two may be one person": from unverified claims, never merged automatically.
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, nullable=False),
    Column("other_customer_id", Id, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", String(512), nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint(
        "tenant_id", "customer_id", "other_customer_id", "kind", "value", name="uq_suggestions_tenant_pair"
    ),
    Index(None, "tenant_id", "other_customer_id"),
)

merges = Table(
    "merges",
    metadata,
    # What a merge moved, exactly, so that unmerge can move it back.
    Column("tenant_id", String(64), primary_key=True),
    Column("id", Id, primary_key=True),
    Column("survivor_id", Id, nullable=False),
    Column("merged_id", Id, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("record", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("undone_at", TS),
    Index(None, "tenant_id", "survivor_id", "merged_id"),
)

# Tables numbered from one sequence: on PostgreSQL ``messages.seq`` and ``conversations.seq`` default to the
# timeline's sequence (migrations 0019, 0020); SQLite has no sequences, so an insert there numbers each row past
# the highest seq of all three, an acknowledgement's ``note_seq`` included (adapters/db/bulk.py), which its
# single writer makes safe.
ORDERED_WITH_TIMELINE = (messages, timeline, conversations)
for _table in ORDERED_WITH_TIMELINE:
    _table.info["seq_shared_with"] = tuple(other.name for other in ORDERED_WITH_TIMELINE)
    _table.info["sequence"] = "timeline_seq_seq"  # PostgreSQL's
# A message with an ``acknowledgement`` takes a second number, its "acknowledged" entry's, after its own
# (migration 0024): (the column numbered, the column whose value asks for it).
messages.info["second_seq"] = ("note_seq", "acknowledgement")
