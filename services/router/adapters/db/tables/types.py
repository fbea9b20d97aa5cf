"""The schema's metadata (naming convention) and the column types every table uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    String,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
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


# Tables updated on the hot path keep a fifth of each page free (migration 0025), so that an update changing no
# indexed column finds room for its new version on the row's page (a HOT update: no index entry written).
ROOM_FOR_UPDATES = {"fillfactor": 80}  # as postgresql_with=


def tenant_reference(column: str, table: str, *, ondelete: str | None = None) -> ForeignKeyConstraint:
    """A reference to a row of another tenant table, by (tenant_id, ``column``): a row never points into
    another tenant, and every key of a tenant table leads with tenant_id, so that a tenant's rows can one day
    be moved to another database server together (tests/integration/test_tenant_keys.py)."""
    return ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"], ondelete=ondelete)
