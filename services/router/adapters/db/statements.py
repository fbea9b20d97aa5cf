"""Statements several repositories share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, any_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import Tuple

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.domain.model import ConversationStatus, routing_attrs_of
from services.router.handlers.ports.records import Lifecycle, fields_of


def insert_ignore(dialect: str, table: Table) -> Any:
    """INSERT ... ON CONFLICT DO NOTHING, on either dialect."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def update_by_id(conn: AsyncConnection, table: Table, params: Sequence[dict[str, Any]], **values: Any) -> None:
    """One UPDATE ... WHERE tenant_id = :b_tenant_id AND id = :b_id for the whole batch (executemany), found by
    the table's key, ``values`` naming the ``b_*`` parameters each row of ``params`` binds; nothing for an empty
    batch."""
    if params:
        found = (table.c.tenant_id == bindparam("b_tenant_id"), table.c.id == bindparam("b_id"))
        await conn.execute(update(table).where(*found).values(**values), params)


async def rows_in(conn: AsyncConnection, query: Select[Any], key: ColumnElement[Any], keys: Iterable[Any]) -> list[Any]:
    """The rows of ``query`` whose ``key`` (a column or a ``tuple_`` of columns) is one of ``keys`` (each asked
    for once); no query for no keys. On PostgreSQL the keys travel as one array per column (``= ANY($1)``,
    ``IN (SELECT FROM unnest(...))``): the statement's text, and so its prepared plan, is the same for every
    batch size, where an IN list has one placeholder per key."""
    wanted = list(set(keys))
    if not wanted:
        return []
    return list(await conn.execute(query.where(key_in(conn, key, wanted))))


def key_in(conn: AsyncConnection, key: ColumnElement[Any], keys: Sequence[Any], name: str = "k") -> Any:
    """``key`` (a column or a ``tuple_`` of columns, such as (tenant_id, id): a tenant table's key) is one of
    ``keys``, as ``rows_in`` asks it, for a statement of any kind (an UPDATE too); ``name`` tells its parameters
    apart from another ``key_in``'s in the same statement."""
    if conn.dialect.name != "postgresql":
        return key.in_(keys)
    if isinstance(key, Tuple):
        columns = list(key.clauses)
        arrays = [
            bindparam(f"{name}{n}", [k[n] for k in keys], type_=postgresql.ARRAY(c.type)) for n, c in enumerate(columns)
        ]
        return in_unnested(key, arrays, name)
    return one_of(conn, key, keys, name)


def in_unnested(key: Tuple, arrays: Sequence[Any], name: str = "k") -> Any:
    """A tuple ``key`` is one of the rows of ``arrays`` (one per column of the key) unnested side by side
    (PostgreSQL): ``key IN (SELECT ... FROM unnest(...))``, its columns named ``name`` and their position."""
    pairs = func.unnest(*arrays).table_valued(*(f"{name}{n}" for n in range(len(arrays)))).render_derived()
    return key.in_(select(*pairs.c))


def one_of(conn: AsyncConnection, column: ColumnElement[Any], values: Sequence[Any], name: str = "keys") -> Any:
    """``column`` is one of ``values``: on PostgreSQL ``= ANY($1)`` with one array (one prepared plan for every
    batch size), elsewhere an IN list."""
    if conn.dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(name, list(values), type_=postgresql.ARRAY(column.type)))


async def add_lifecycle(conn: AsyncConnection, rows: Sequence[Lifecycle]) -> None:
    """Timeline entries that are not messages (opened, assigned, resolved...)."""
    if rows:
        await insert_rows(conn, t.timeline, [fields_of(e) for e in rows])  # its fields are the columns


def resolution(now: datetime) -> dict[str, Any]:
    """What resolving sets on every conversation's row it resolves (its note aside): resolved now, and out of
    routing."""
    return {"status": ConversationStatus.RESOLVED.value, "resolved_at": now, "routing": None}


def routing_attrs(row: Any) -> dict[str, Any]:
    """What queue rules and the engine see of a customer, from a row of ``customers``."""
    return routing_attrs_of(row.tier, row.language, row.tags, row.attributes, getattr(row, "owner_agent_id", None))
