"""Fixed statements run by the driver itself, in the unit's own transaction (PostgreSQL only).

The set-based writes of a batch (``bulk.py``) have a text that never changes, yet each execution through
SQLAlchemy paid for its statement cache lookup, an execution context, parameter processing and result
wrapping: in a profile of the router at saturation, about as much CPU as asyncpg's own work. Here such a
statement goes straight to asyncpg: its named parameters numbered once per text, asyncpg's prepared-statement
cache, and the transaction SQLAlchemy opened for the unit (begun now if this is its first statement, as
SQLAlchemy's own first statement would). A failure is raised as SQLAlchemy raises it, a ``DBAPIError`` over
the driver's error that says whether the connection was lost, so callers and ``shared/failures.py`` cannot
tell the two paths apart (tests/integration/test_raw_statements.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
from sqlalchemy.ext.asyncio import AsyncConnection

# ``:name``, not a ``::type`` cast, and nothing inside a quoted literal (matched whole, and kept as it is)
_NAMED = re.compile(r"'(?:[^']|'')*'|(?<![:\w]):([A-Za-z_]\w*)")


def _check_adaptation() -> None:
    """What ``fetch`` uses of SQLAlchemy's adaptation of an asyncpg connection (its statement lock, its
    transaction, its error mapping) is not public: a SQLAlchemy without it fails here, when the router starts,
    rather than on every batch."""
    adaptation = AsyncAdapt_asyncpg_connection
    slots = {name for cls in adaptation.__mro__ for name in getattr(cls, "__slots__", ())}
    missing = [name for name in ("_execute_mutex", "_transaction") if name not in slots]
    missing += [
        name
        for name in ("_start_transaction", "_handle_exception", "driver_connection")
        if not hasattr(adaptation, name)
    ]
    if missing:
        raise ImportError(f"this SQLAlchemy's asyncpg adaptation has no {', '.join(missing)} (raw.py needs them)")


_check_adaptation()


@dataclass(frozen=True, slots=True)
class Numbered:
    sql: str  # with $1, $2, ... in place of the names
    names: tuple[str, ...]  # the name of each number, in order


@lru_cache(maxsize=512)
def numbered(sql: str) -> Numbered:
    """``sql`` with asyncpg's numbered parameters in place of SQLAlchemy's named ones (each name one number)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return Numbered(_NAMED.sub(number, sql), tuple(names))


async def fetch(
    conn: AsyncConnection, sql: str, params: Mapping[str, Any], *, record_class: type[Any] | None = None
) -> Sequence[Any]:
    """The rows ``sql`` returns (indexable by position and by name, each a ``record_class``, asyncpg's Record
    unless given); none for a statement without RETURNING."""
    statement = numbered(sql)
    args = [params[name] for name in statement.names]
    sync = conn.sync_connection
    if sync is None or sync.closed or sync.invalidated:
        raise exc.ResourceClosedError("This Connection is closed")
    adapted: Any = sync.connection.dbapi_connection  # SQLAlchemy's adaptation of the asyncpg connection
    async with adapted._execute_mutex:  # one statement at a time on a connection, as SQLAlchemy's cursor does
        try:
            if adapted._transaction is None:
                await adapted._start_transaction()
            return await adapted.driver_connection.fetch(  # type: ignore[no-any-return]
                statement.sql, *args, record_class=record_class
            )
        except Exception as error:
            # a dropped connection needs nothing more here: the unit's rollback finds it dead, as it would after
            # SQLAlchemy's own statement, and the pool replaces it
            raise _as_sqlalchemy_raises(conn, adapted, statement.sql, args, error) from error


def _as_sqlalchemy_raises(
    conn: AsyncConnection, adapted: Any, sql: str, args: list[Any], error: Exception
) -> exc.StatementError:
    """The error SQLAlchemy's own execution would raise: the driver's error in its DB-API form, wrapped in a
    ``DBAPIError`` (any other error in a ``StatementError``)."""
    dbapi_error: Exception = error
    try:
        adapted._handle_exception(error)  # raises the DB-API form (an error it has already mapped as it is)
    except Exception as mapped:
        dbapi_error = mapped
    dialect = conn.dialect
    disconnect = isinstance(dbapi_error, dialect.loaded_dbapi.Error) and dialect.is_disconnect(
        dbapi_error, adapted, None
    )
    return exc.DBAPIError.instance(
        sql, args, dbapi_error, dialect.loaded_dbapi.Error, connection_invalidated=disconnect, dialect=dialect
    )
