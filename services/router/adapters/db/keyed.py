"""Statements over the rows whose key is one of a batch's keys, built once.

``rows_in`` and ``key_in`` build such a statement with SQLAlchemy at every call. On the owner's path that is a
dozen statements a batch, and a profile of the router at 800 msg/s put building them, their cache keys, the
compiled-statement lookup and the wrapping of their rows near 7 % of its samples. A ``Keyed`` statement is
built once, where it is declared. On PostgreSQL its text is compiled once, the keys travel as one array per key
column (the text, and so its prepared plan, the same for every batch size), and asyncpg runs it itself
(``raw.py``); its rows are read by column name as attributes (``row.id``), by position and unpacked, as
SQLAlchemy's are. On SQLite it runs through SQLAlchemy with an IN list, as ``rows_in`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import ColumnElement, Delete, Select, Update, any_, bindparam, cast
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import Tuple
from sqlalchemy.types import TypeDecorator, TypeEngine

from services.router.adapters.db import raw
from services.router.adapters.db.statements import in_unnested

_PG = postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]  # compiles texts only


class Row(asyncpg.Record):  # type: ignore[misc]
    """A row of asyncpg's, read by column name as an attribute too, as SQLAlchemy's rows are."""

    __slots__ = ()

    @property
    def _mapping(self) -> dict[str, Any]:
        return dict(self.items())

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Keyed:
    """``statement`` (a SELECT, UPDATE or DELETE) over the rows whose ``key`` (a column, or a ``tuple_`` of
    columns such as a tenant table's (tenant_id, id)) is one of the keys ``run`` is given. Other values it
    needs are ``bindparam``s given by name to ``run``; values written into the statement are bound once."""

    def __init__(self, statement: Select[Any] | Update | Delete, key: ColumnElement[Any]) -> None:
        self.statement = statement
        self.key = key
        self.width = len(key.clauses) if isinstance(key, Tuple) else 1
        compiled = statement.where(_pg_key_in(key)).compile(dialect=_PG)
        self.sql = str(compiled)
        binds = {name: compiled.binds[name] for name in raw.numbered(self.sql).names if not name.startswith("_k")}
        self.types: dict[str, TypeEngine[Any]] = {name: bind.type for name, bind in binds.items()}
        self.literals = {
            name: _bound(bind.type, bind.effective_value) for name, bind in binds.items() if not bind.required
        }
        self.named = {name for name, bind in binds.items() if bind.required}

    async def run(self, conn: AsyncConnection, keys: Iterable[Any], **values: Any) -> Sequence[Any]:
        """The rows the statement returns for ``keys`` (each asked for once); none, and no statement, for none."""
        wanted = list(set(keys))
        if not wanted:
            return []
        if values.keys() != self.named:
            raise TypeError(f"this statement takes {sorted(self.named)}, given {sorted(values)}")
        if conn.dialect.name != "postgresql":
            result = await conn.execute(self.statement.where(self.key.in_(wanted)), values or None)
            return list(result) if result.returns_rows else []
        params = dict(self.literals)
        params.update({name: _bound(self.types[name], value) for name, value in values.items()})
        if self.width == 1:
            params["_k0"] = wanted
        else:
            for n in range(self.width):
                params[f"_k{n}"] = [k[n] for k in wanted]
        return await raw.fetch(conn, self.sql, params, record_class=Row)


def _pg_key_in(key: ColumnElement[Any]) -> Any:
    """The key is one of the arrays' (PostgreSQL): ``= ANY`` for a column, pairs of ``unnest`` for a tuple; the
    arrays cast to their columns' types, as the driver is given no types."""
    if not isinstance(key, Tuple):
        return key == any_(cast(bindparam("_k0"), postgresql.ARRAY(key.type)))
    return in_unnested(key, [cast(bindparam(f"_k{n}"), postgresql.ARRAY(c.type)) for n, c in enumerate(key.clauses)])


def _bound(kind: TypeEngine[Any], value: Any) -> Any:
    """A value as the driver takes it: the column type's own conversion (aware UTC datetimes)."""
    if isinstance(kind, TypeDecorator):
        return kind.process_bind_param(value, _PG)
    return value
