"""messages are their own timeline entries: numbered from the timeline's sequence, no copy in ``timeline``

Each message used to have a row of kind ``message`` in ``timeline`` as well. Now the timeline is read from
both tables, so a message takes its seq from the timeline's numbering: existing messages take the seq of their
old entry (histories keep their order and cursors), then those entries go.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 14:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a message may have more than one entry (a redelivery raced the first): it takes the first one's place
_ENTRY = "SELECT min(tl.seq) FROM timeline tl WHERE tl.kind = 'message' AND tl.message_id = messages.id"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    # for the lookups below: without it each message's lookup would read the whole timeline
    op.create_index("ix_timeline_message_id_0019", "timeline", ["message_id"])
    # Negative first, so that no value is taken twice on the way: a message takes its entry's seq; one without
    # an entry (none is expected) a new number past every entry's.
    op.execute(f"UPDATE messages SET seq = -({_ENTRY}) WHERE ({_ENTRY}) IS NOT NULL")
    if postgresql:
        op.execute("UPDATE messages SET seq = -nextval('timeline_seq_seq') WHERE seq > 0")
    else:
        op.execute(
            "UPDATE messages SET seq = -(seq + (SELECT coalesce(max(seq), 0) FROM timeline)"
            " + (SELECT coalesce(-min(seq), 0) FROM messages WHERE seq < 0)) WHERE seq > 0"
        )
    op.execute("UPDATE messages SET seq = -seq")
    op.execute("DELETE FROM timeline WHERE kind = 'message'")
    op.drop_index("ix_timeline_message_id_0019", table_name="timeline")
    if postgresql:
        op.execute("ALTER TABLE messages ALTER COLUMN seq SET DEFAULT nextval('timeline_seq_seq')")
        op.execute("DROP SEQUENCE messages_seq_seq")
    op.create_index("ix_messages_customer_id_seq", "messages", ["customer_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_messages_customer_id_seq", table_name="messages")
    op.execute(
        "INSERT INTO timeline (seq, tenant_id, customer_id, conversation_id, kind, message_id, channel, at, data) "
        "SELECT seq, tenant_id, customer_id, conversation_id, 'message', id, channel, received_at, '{}' FROM messages"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE messages_seq_seq OWNED BY messages.seq")
        op.execute("SELECT setval('messages_seq_seq', (SELECT coalesce(max(seq), 0) + 1 FROM messages), false)")
        op.execute("ALTER TABLE messages ALTER COLUMN seq SET DEFAULT nextval('messages_seq_seq')")
