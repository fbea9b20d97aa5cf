"""an acknowledgement is its own "acknowledged" timeline entry: what it promised on the message, no copy in ``timeline``

Each acknowledgement (a message from ``system``, idempotency key ``acknowledgement:<conversation id>``) had a row
of kind ``acknowledged`` in ``timeline`` as well, repeating its id and channel beside what it promised. Now the
message holds the promise (``acknowledgement``) and the entry's own number from the timeline's numbering
(``note_seq``), and the timeline reads the entry from it. An existing acknowledgement takes its entry's seq and
data (histories keep their order, cursors and contents; an erased entry's blanked data stays blank: a NULL
promise), then those entries go. An entry whose message is gone stays as it is.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "acknowledgement:"  # handlers/acknowledgements.py key_of: the conversation's id follows
NOTED = "note_seq IS NOT NULL"

# The conversation's entry, found by the message's key (an erased entry's data no longer names the message); a
# conversation may have more than one (a batch that raced itself): the message takes the first one's place.
_ENTRY = (
    "SELECT min(tl.seq) FROM timeline tl WHERE tl.tenant_id = messages.tenant_id AND tl.kind = 'acknowledged'"
    f" AND tl.conversation_id = substr(messages.event_id, {len(KEY) + 1})"
)
_ACKNOWLEDGEMENT = f"direction = 'outbound' AND event_id LIKE '{KEY}%'"


def _promise(postgresql: bool) -> str:
    """The entry's data but what the message holds itself (its id; its channel, where the two agree): NULL for
    a blanked entry."""
    if postgresql:
        named, channel = "tl.data->>'message_id'", "tl.data->>'channel'"
        less_both, less_id = (
            "(tl.data::jsonb - 'message_id' - 'channel')::json",
            "(tl.data::jsonb - 'message_id')::json",
        )
    else:
        named, channel = "json_extract(tl.data, '$.message_id')", "json_extract(tl.data, '$.channel')"
        less_both, less_id = "json_remove(tl.data, '$.message_id', '$.channel')", "json_remove(tl.data, '$.message_id')"
    return f"CASE WHEN {named} IS NULL THEN NULL WHEN {channel} = messages.channel THEN {less_both} ELSE {less_id} END"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column("messages", sa.Column("acknowledgement", sa.JSON(none_as_null=True)))
    op.add_column("messages", sa.Column("note_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
    # for the lookups below: without it each acknowledgement's lookup would read the whole timeline
    acknowledged = sa.text("kind = 'acknowledged'")
    op.create_index(
        "ix_timeline_acknowledged_0024",
        "timeline",
        ["tenant_id", "conversation_id"],
        postgresql_where=acknowledged,
        sqlite_where=acknowledged,
    )
    op.execute(f"UPDATE messages SET note_seq = ({_ENTRY}) WHERE {_ACKNOWLEDGEMENT}")
    op.execute(
        f"UPDATE messages SET acknowledgement = (SELECT {_promise(postgresql)} FROM timeline tl"
        f" WHERE tl.tenant_id = messages.tenant_id AND tl.seq = messages.note_seq) WHERE {NOTED}"
    )
    op.execute(
        "DELETE FROM timeline WHERE kind = 'acknowledged' AND EXISTS (SELECT 1 FROM messages m"
        f" WHERE m.tenant_id = timeline.tenant_id AND m.event_id = '{KEY}' || timeline.conversation_id"
        " AND m.note_seq IS NOT NULL)"
    )
    op.drop_index("ix_timeline_acknowledged_0024", table_name="timeline")
    noted = sa.text(NOTED)
    op.create_index(
        "ix_messages_tenant_id_customer_id_note_seq",
        "messages",
        ["tenant_id", "customer_id", "note_seq"],
        postgresql_where=noted,
        sqlite_where=noted,
    )
    op.create_index("ix_messages_note_seq", "messages", ["note_seq"], postgresql_where=noted, sqlite_where=noted)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        data = (
            "CASE WHEN acknowledgement IS NULL THEN CAST('{}' AS JSON) ELSE"
            " (jsonb_build_object('message_id', id, 'channel', channel) || acknowledgement::jsonb)::json END"
        )
    else:
        # json_insert, not json_patch: a merge patch drops the keys whose value is null (RFC 7396)
        data = (
            "CASE WHEN acknowledgement IS NULL THEN '{}' ELSE"
            " json_insert(acknowledgement, '$.message_id', id, '$.channel', channel) END"
        )
    op.execute(
        "INSERT INTO timeline (seq, tenant_id, customer_id, conversation_id, kind, at, data) SELECT note_seq,"
        f" tenant_id, customer_id, conversation_id, 'acknowledged', created_at, {data} FROM messages WHERE {NOTED}"
    )
    op.drop_index("ix_messages_note_seq", table_name="messages")
    op.drop_index("ix_messages_tenant_id_customer_id_note_seq", table_name="messages")
    op.drop_column("messages", "note_seq")
    op.drop_column("messages", "acknowledgement")
