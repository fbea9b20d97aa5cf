"""a conversation is its own "opened" timeline entry: numbered from the timeline's sequence, no copy in ``timeline``

Each conversation used to have a row of kind ``opened`` in ``timeline``. Now the timeline reads it from the
conversation, which takes its seq from the timeline's numbering: an existing conversation takes the seq of its
old entry (histories keep their order and cursors), then those entries go. One without an entry keeps a NULL
seq, and so, as before, no "opened" entry.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 20:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# a conversation may have more than one entry (a batch taken twice raced itself): it takes the first one's place
_ENTRY = "SELECT min(tl.seq) FROM timeline tl WHERE tl.kind = 'opened' AND tl.conversation_id = conversations.id"


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column("conversations", sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
    op.add_column("conversations", sa.Column("opened_channel", sa.String(16)))
    # for the lookups below: without it each conversation's lookup would read the whole timeline
    op.create_index("ix_timeline_conversation_kind_0020", "timeline", ["conversation_id", "kind"])
    op.execute(f"UPDATE conversations SET seq = ({_ENTRY})")
    said = "tl.data->>'channel'" if postgresql else "json_extract(tl.data, '$.channel')"
    op.execute(
        f"UPDATE conversations SET opened_channel = coalesce((SELECT {said} FROM timeline tl WHERE tl.seq ="
        " conversations.seq), channel)"
    )
    op.execute(
        "DELETE FROM timeline WHERE kind = 'opened' AND conversation_id IN"
        " (SELECT id FROM conversations WHERE seq IS NOT NULL)"
    )
    op.drop_index("ix_timeline_conversation_kind_0020", table_name="timeline")
    if postgresql:
        op.execute("ALTER TABLE conversations ALTER COLUMN seq SET DEFAULT nextval('timeline_seq_seq')")
    op.create_index("ix_conversations_seq", "conversations", ["seq"])


def downgrade() -> None:
    op.drop_index("ix_conversations_seq", table_name="conversations")
    postgresql = op.get_bind().dialect.name == "postgresql"
    data = "json_build_object('channel', opened_channel)" if postgresql else "json_object('channel', opened_channel)"
    op.execute(
        "INSERT INTO timeline (seq, tenant_id, customer_id, conversation_id, kind, channel, at, data) SELECT seq,"
        f" tenant_id, customer_id, id, 'opened', NULL, opened_at, CASE WHEN erased_at IS NULL THEN {data} ELSE"
        f" {'CAST(' if postgresql else ''}'{{}}'{' AS JSON)' if postgresql else ''} END FROM conversations"
        " WHERE seq IS NOT NULL"
    )
    op.drop_column("conversations", "opened_channel")
    op.drop_column("conversations", "seq")
