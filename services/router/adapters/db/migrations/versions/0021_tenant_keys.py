"""tenant_id leads every primary key, unique constraint and foreign key of the tenant tables

So that a tenant's rows can one day live on a database server of their own without another schema change:
keys become (tenant_id, id) or (tenant_id, seq), a reference between tenant tables goes by (tenant_id, id), so a
row can no longer point into another tenant, and the indexes the router reads by a customer, conversation or
agent lead with tenant_id too. Ids and seqs keep their values. Two lookups come before the tenant is known, an
API key by its hash and a survey by its link's token: their uniqueness is now per tenant (across tenants their
randomness keeps them apart) and each keeps an index of its own.

SQLite rebuilds each table (batch mode); services.router.adapters.db.migrate turns its foreign keys off around
the migration, as SQLite's procedure for schema changes asks, so that dropping an old table deletes nothing.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02 03:00:00
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


@dataclass(frozen=True)
class Fk:
    name: str
    columns: tuple[str, ...]
    referred: str
    referred_columns: tuple[str, ...]
    ondelete: str | None = None


@dataclass(frozen=True)
class Ix:
    name: str
    columns: tuple[str, ...]
    unique: bool = False
    where: str | None = None


@dataclass(frozen=True)
class Keys:
    """One table's keys: its primary key, unique constraints, foreign keys and indexes that change."""

    pk: tuple[str, ...]
    uniques: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fks: tuple[Fk, ...] = ()
    indexes: tuple[Ix, ...] = ()


def _by_id(**more: object) -> Keys:
    return Keys(("tenant_id", "id"), **more)  # type: ignore[arg-type]


def _fk(table: str, column: str, referred: str, ondelete: str | None = "CASCADE") -> Fk:
    return Fk(
        f"fk_{table}_tenant_id_{column}_{referred}", ("tenant_id", column), referred, ("tenant_id", "id"), ondelete
    )


def _old_fk(table: str, column: str, referred: str, ondelete: str | None = "CASCADE") -> Fk:
    return Fk(f"fk_{table}_{column}_{referred}", (column,), referred, ("id",), ondelete)


_LIVE = "ended_at IS NULL"

BEFORE: dict[str, Keys] = {
    "customers": Keys(("id",)),
    "identities": Keys(
        ("id",),
        fks=(_old_fk("identities", "customer_id", "customers"),),
        indexes=(Ix("ix_identities_customer_id", ("customer_id",)),),
    ),
    "conversations": Keys(
        ("id",),
        fks=(_old_fk("conversations", "customer_id", "customers"),),
        indexes=(Ix("ix_conversations_customer_id_status_resolved_at", ("customer_id", "status", "resolved_at")),),
    ),
    "messages": Keys(
        ("seq",),
        uniques={"uq_messages_id": ("id",)},
        fks=(_old_fk("messages", "conversation_id", "conversations"),),
        indexes=(
            Ix("ix_messages_conversation_id_seq", ("conversation_id", "seq")),
            Ix("ix_messages_customer_id_seq", ("customer_id", "seq")),
        ),
    ),
    "timeline": Keys(("seq",), indexes=(Ix("ix_timeline_customer_id_seq", ("customer_id", "seq")),)),
    "suggestions": Keys(
        ("id",),
        uniques={
            "uq_suggestions_customer_id_other_customer_id_kind_value": (
                "customer_id",
                "other_customer_id",
                "kind",
                "value",
            )
        },
        indexes=(Ix("ix_suggestions_other_customer_id", ("other_customer_id",)),),
    ),
    "merges": Keys(("id",), indexes=(Ix("ix_merges_survivor_id_merged_id", ("survivor_id", "merged_id")),)),
    "sla_timers": Keys(
        ("id",),
        fks=(_old_fk("sla_timers", "conversation_id", "conversations"),),
        indexes=(Ix("ix_sla_timers_conversation_id", ("conversation_id",)),),
    ),
    "surveys": Keys(
        ("id",),
        uniques={"uq_surveys_token": ("token",)},
        fks=(_old_fk("surveys", "conversation_id", "conversations"),),
        indexes=(
            Ix("ix_surveys_customer_id_sent_at", ("customer_id", "sent_at")),
            Ix("ix_surveys_conversation_id", ("conversation_id",)),
        ),
    ),
    "api_keys": Keys(("id",), uniques={"uq_api_keys_key_hash": ("key_hash",)}),
    "audit_log": Keys(("seq",), indexes=(Ix("ix_audit_log_tenant_id_seq", ("tenant_id", "seq")),)),
    "deadletters": Keys(
        ("id",), uniques={"uq_deadletters_dl_topic_dl_partition_dl_offset": ("dl_topic", "dl_partition", "dl_offset")}
    ),
    "webhook_deliveries": Keys(
        ("seq",),
        uniques={
            "uq_webhook_deliveries_id": ("id",),
            "uq_webhook_deliveries_deployment_url_event_id": ("deployment", "url", "event_id"),
        },
    ),
    "queues": Keys(("id",)),
    "routing_profiles": Keys(("id",)),
    "agents": Keys(("id",), indexes=(Ix("ix_agents_tenant_id", ("tenant_id",)),)),
    "agent_connections": Keys(("id",)),
    "assignments": Keys(
        ("seq",),
        uniques={"uq_assignments_id": ("id",)},
        fks=(
            _old_fk("assignments", "conversation_id", "conversations"),
            _old_fk("assignments", "agent_id", "agents", None),
        ),
        indexes=(
            Ix("uq_assignments_live_per_conversation", ("conversation_id",), unique=True, where=_LIVE),
            Ix("ix_assignments_agent_id_seq", ("agent_id", "seq")),
        ),
    ),
    "agent_events": Keys(
        ("seq",),
        uniques={"uq_agent_events_id": ("id",)},
        indexes=(Ix("ix_agent_events_agent_id_seq", ("agent_id", "seq")),),
    ),
    "routing_commands": Keys(("id",)),
}

_BY_SEQ = ("tenant_id", "seq")

AFTER: dict[str, Keys] = {
    "customers": _by_id(),
    "identities": _by_id(
        fks=(_fk("identities", "customer_id", "customers"),),
        indexes=(Ix("ix_identities_tenant_id_customer_id", ("tenant_id", "customer_id")),),
    ),
    "conversations": _by_id(
        fks=(_fk("conversations", "customer_id", "customers"),),
        indexes=(
            Ix(
                "ix_conversations_tenant_id_customer_id_status_resolved_at",
                ("tenant_id", "customer_id", "status", "resolved_at"),
            ),
        ),
    ),
    "messages": Keys(
        _BY_SEQ,
        uniques={"uq_messages_tenant_id_id": ("tenant_id", "id")},
        fks=(_fk("messages", "conversation_id", "conversations"),),
        indexes=(
            Ix("ix_messages_tenant_id_conversation_id_seq", ("tenant_id", "conversation_id", "seq")),
            Ix("ix_messages_tenant_id_customer_id_seq", ("tenant_id", "customer_id", "seq")),
        ),
    ),
    "timeline": Keys(
        _BY_SEQ, indexes=(Ix("ix_timeline_tenant_id_customer_id_seq", ("tenant_id", "customer_id", "seq")),)
    ),
    "suggestions": _by_id(
        uniques={"uq_suggestions_tenant_pair": ("tenant_id", "customer_id", "other_customer_id", "kind", "value")},
        indexes=(Ix("ix_suggestions_tenant_id_other_customer_id", ("tenant_id", "other_customer_id")),),
    ),
    "merges": _by_id(
        indexes=(Ix("ix_merges_tenant_id_survivor_id_merged_id", ("tenant_id", "survivor_id", "merged_id")),)
    ),
    "sla_timers": _by_id(
        fks=(_fk("sla_timers", "conversation_id", "conversations"),),
        indexes=(Ix("ix_sla_timers_tenant_id_conversation_id", ("tenant_id", "conversation_id")),),
    ),
    "surveys": _by_id(
        uniques={"uq_surveys_tenant_id_token": ("tenant_id", "token")},
        fks=(_fk("surveys", "conversation_id", "conversations"),),
        indexes=(
            Ix("ix_surveys_token", ("token",)),
            Ix("ix_surveys_tenant_id_customer_id_sent_at", ("tenant_id", "customer_id", "sent_at")),
            Ix("ix_surveys_tenant_id_conversation_id", ("tenant_id", "conversation_id")),
        ),
    ),
    "api_keys": _by_id(
        uniques={"uq_api_keys_tenant_id_key_hash": ("tenant_id", "key_hash")},
        indexes=(Ix("ix_api_keys_key_hash", ("key_hash",)),),
    ),
    "audit_log": Keys(_BY_SEQ),
    "deadletters": _by_id(
        uniques={
            "uq_deadletters_tenant_id_dl_topic_dl_partition_dl_offset": (
                "tenant_id",
                "dl_topic",
                "dl_partition",
                "dl_offset",
            )
        }
    ),
    "webhook_deliveries": Keys(
        _BY_SEQ,
        uniques={
            "uq_webhook_deliveries_tenant_id_id": ("tenant_id", "id"),
            "uq_webhook_deliveries_tenant_id_deployment_url_event_id": ("tenant_id", "deployment", "url", "event_id"),
        },
    ),
    "queues": _by_id(),
    "routing_profiles": _by_id(),
    "agents": _by_id(),
    "agent_connections": _by_id(),
    "assignments": Keys(
        _BY_SEQ,
        uniques={"uq_assignments_tenant_id_id": ("tenant_id", "id")},
        fks=(
            _fk("assignments", "conversation_id", "conversations"),
            _fk("assignments", "agent_id", "agents", None),
        ),
        indexes=(
            Ix("uq_assignments_live_per_conversation", ("tenant_id", "conversation_id"), unique=True, where=_LIVE),
            Ix("ix_assignments_tenant_id_agent_id_seq", ("tenant_id", "agent_id", "seq")),
        ),
    ),
    "agent_events": Keys(
        _BY_SEQ,
        uniques={"uq_agent_events_tenant_id_id": ("tenant_id", "id")},
        indexes=(Ix("ix_agent_events_tenant_id_agent_id_seq", ("tenant_id", "agent_id", "seq")),),
    ),
    "routing_commands": _by_id(),
}


def upgrade() -> None:
    _rekey(BEFORE, AFTER)


def downgrade() -> None:
    _rekey(AFTER, BEFORE)


def _rekey(old: dict[str, Keys], new: dict[str, Keys]) -> None:
    if op.get_bind().dialect.name == "postgresql":
        _rekey_postgresql(old, new)
    else:
        _rekey_sqlite(old, new)


def _rekey_postgresql(old: dict[str, Keys], new: dict[str, Keys]) -> None:
    # references first (a key cannot go while one refers to it), then keys and indexes, then new references
    # (to the new keys)
    for table, keys in old.items():
        for fk in keys.fks:
            op.drop_constraint(fk.name, table, type_="foreignkey")
    for table, keys in old.items():
        for index in keys.indexes:
            op.drop_index(index.name, table_name=table)
        for name in keys.uniques:
            op.drop_constraint(name, table, type_="unique")
        op.drop_constraint(f"pk_{table}", table, type_="primary")
    for table, keys in new.items():
        op.create_primary_key(f"pk_{table}", table, list(keys.pk))
        for name, columns in keys.uniques.items():
            op.create_unique_constraint(name, table, list(columns))
        for index in keys.indexes:
            where = {"postgresql_where": sa.text(index.where)} if index.where else {}
            op.create_index(index.name, table, list(index.columns), unique=index.unique, **where)  # type: ignore[arg-type]
    for table, keys in new.items():
        for fk in keys.fks:
            op.create_foreign_key(
                fk.name, table, fk.referred, list(fk.columns), list(fk.referred_columns), ondelete=fk.ondelete
            )


def _rekey_sqlite(old: dict[str, Keys], new: dict[str, Keys]) -> None:
    """Each table rebuilt with its new keys (SQLite alters no key in place)."""
    for table, keys in new.items():
        before = old[table]
        for index in before.indexes:
            op.drop_index(index.name, table_name=table)
        with op.batch_alter_table(table, recreate="always") as batch:
            for fk in before.fks:
                batch.drop_constraint(fk.name, type_="foreignkey")
            for name in before.uniques:
                batch.drop_constraint(name, type_="unique")
            batch.drop_constraint(f"pk_{table}", type_="primary")
            batch.create_primary_key(f"pk_{table}", list(keys.pk))
            for name, columns in keys.uniques.items():
                batch.create_unique_constraint(name, list(columns))
            for fk in keys.fks:
                batch.create_foreign_key(
                    fk.name, fk.referred, list(fk.columns), list(fk.referred_columns), ondelete=fk.ondelete
                )
        for index in keys.indexes:
            where = {"sqlite_where": sa.text(index.where)} if index.where else {}
            op.create_index(index.name, table, list(index.columns), unique=index.unique, **where)  # type: ignore[arg-type]
