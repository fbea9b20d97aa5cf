"""Set-based writes: a whole batch of rows in one statement.

On PostgreSQL a batch goes in as one array per column, ``INSERT ... SELECT FROM unnest(...)`` or
``UPDATE ... FROM unnest(...)``: one statement and one plan whatever the batch size (the text depends only on
the table and the columns, so asyncpg's prepared-statement cache serves it), where an executemany runs the
statement once per row. Being fixed, that text is run by the driver itself (``raw.py``), not through
SQLAlchemy's execution. SQLite, in process, keeps the executemany: a statement there costs no round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import JSON, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import TypeDecorator, TypeEngine

from services.router.adapters.db import raw
from services.router.adapters.db.tables.types import TS, UtcDateTime

_PG = postgresql.dialect()  # type: ignore[no-untyped-call]  # the dialect only compiles type names here


async def insert_rows(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], *, ignore_conflicts: bool = False
) -> None:
    """Inserts ``rows`` (dicts with the same keys); with ``ignore_conflicts`` a row that would break a unique
    constraint is skipped (``ON CONFLICT DO NOTHING``), as a redelivered batch needs."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        statement = sqlite.insert(table).on_conflict_do_nothing() if ignore_conflicts else insert(table)
        await conn.execute(statement, await numbered(conn, table, rows))
        return
    columns = tuple(rows[0])
    await raw.fetch(conn, _insert_sql(table, columns, ignore_conflicts), _arrays(table, columns, rows))


async def insert_numbered(
    conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Inserts ``rows`` (dicts with the same keys, an ``id`` each) into a table numbered by ``seq``: the rows
    with the seq each was given, in one statement for the batch on PostgreSQL too."""
    if not rows:
        return []
    if conn.dialect.name != "postgresql":
        given = await numbered(conn, table, rows)
        await conn.execute(insert(table), given)
        return given
    columns = tuple(rows[0])
    result = await raw.fetch(conn, _insert_sql(table, columns, False, "id, seq"), _arrays(table, columns, rows))
    seqs = {r[0]: r[1] for r in result}
    return [{**row, "seq": seqs[row["id"]]} for row in rows]


async def update_rows(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str | tuple[str, ...] = "id",
    keep: frozenset[str] = frozenset(),
    or_stored: frozenset[str] = frozenset(),
    unless_set: str | None = None,
    **constants: Any,
) -> None:
    """Updates one row per item of ``rows``, found by its ``key`` column (or columns), to the item's other
    values; columns in ``keep`` are set only where still NULL; columns in ``or_stored`` keep what is stored
    where the item has None; a row whose ``unless_set`` column is not NULL is left as it is; ``constants`` are
    the same for every row."""
    if not rows:
        return
    columns = tuple(rows[0])
    keys = (key,) if isinstance(key, str) else key
    if conn.dialect.name != "postgresql":
        values: dict[str, Any] = {c: bindparam(f"b_{c}") for c in columns if c not in keys}
        for c in keep & values.keys():
            values[c] = _coalesce(table, c)
        for c in or_stored & values.keys():
            values[c] = func.coalesce(_bind(table, c), table.c[c])
        found = [table.c[k] == bindparam(f"b_{k}") for k in keys]
        statement = update(table).where(*found).values(**values, **constants)
        if unless_set is not None:
            statement = statement.where(table.c[unless_set].is_(None))
        await conn.execute(statement, [{f"b_{c}": row[c] for c in columns} for row in rows])
        return
    sql = _update_sql(table, columns, keys, keep, tuple(sorted(constants)), unless_set, or_stored)
    params = _arrays(table, columns, rows)
    params.update({f"k_{name}": _bound(table, name, value) for name, value in constants.items()})
    await raw.fetch(conn, sql, params)


async def numbered(conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows to insert into ``table``, each with its ``seq`` on SQLite, which has no sequences (and numbers no
    column of a primary key of two): one past the highest number of the tables that share the table's numbering
    (``info["seq_shared_with"]``; a table's ``info["second_seq"]`` column counts too), read once. A row that asks
    for a second number (``second_seq``) takes the next one as well. The store runs one SQLite writer at a time,
    so no other transaction numbers rows meanwhile. PostgreSQL numbers them itself: the rows as given."""
    shared = table.info.get("seq_shared_with")
    if not shared or conn.dialect.name == "postgresql":
        return [dict(row) for row in rows]
    columns = []
    for name in shared:
        other = table.metadata.tables[name]
        columns.append(other.c.seq)
        if "second_seq" in other.info:
            columns.append(other.c[other.info["second_seq"][0]])
    highest = [func.coalesce(select(func.max(c)).where(c.is_not(None)).scalar_subquery(), 0) for c in columns]
    last = int((await conn.execute(select(func.max(*highest) if len(highest) > 1 else highest[0]))).scalar_one())
    second = _second_seq(table, tuple(rows[0]) if rows else ())
    given = []
    for row in rows:
        last += 1
        out = {**row, "seq": last}
        if second is not None:
            column, asked_by = second
            out[column] = None
            if row[asked_by] is not None:
                last += 1
                out[column] = last
        given.append(out)
    return given


def _second_seq(table: Table, columns: tuple[str, ...]) -> tuple[str, str] | None:
    """(the column numbered, the column that asks for it) if rows of ``columns`` take a second number: the table
    has one (``info["second_seq"]``), the rows give what asks for it and not the number itself."""
    second: tuple[str, str] | None = table.info.get("second_seq")
    if second is None or second[1] not in columns or second[0] in columns:
        return None
    return second


def _coalesce(table: Table, column: str) -> Any:
    return func.coalesce(table.c[column], _bind(table, column))


def _bind(table: Table, column: str) -> Any:
    """The item's value for ``column`` inside an expression, where it does not take the column's type by itself:
    typed, and a JSON None bound as SQL NULL (not JSON ``null``) so that coalesce sees nothing."""
    kind = table.c[column].type
    return bindparam(f"b_{column}", type_=JSON(none_as_null=True) if _is_json(kind) else kind)


@lru_cache(maxsize=256)
def _insert_sql(table: Table, columns: tuple[str, ...], ignore_conflicts: bool, returning: str = "") -> str:
    names = [f'"{c}"' for c in columns]
    picked = [_read(table, c) for c in columns]
    source = _unnest(table, columns)
    second = _second_seq(table, columns)
    if second is not None:
        # Both numbers drawn per row in the source, the smaller the row's seq and the larger its second one,
        # whichever of the two nextval() calls runs first: the second entry always follows the row's own. What
        # asks for it is JSON (as text: None is the text null, ``_bound``), stored as SQL NULL when it does not.
        column, asked_by = second
        given = f"NULLIF(v.\"{asked_by}\", 'null')"
        picked[columns.index(asked_by)] = f"CAST({given} AS JSON)"
        draw = f"nextval('{table.info['sequence']}')"
        names += ['"seq"', f'"{column}"']
        picked += ["least(v._a, v._b)", "CASE WHEN v._b IS NOT NULL THEN greatest(v._a, v._b) END"]
        source = f"(SELECT v.*, {draw} AS _a, CASE WHEN {given} IS NOT NULL THEN {draw} END AS _b FROM {source}) AS v"
    conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
    back = f" RETURNING {returning}" if returning else ""
    into = f'INSERT INTO "{table.name}" ({", ".join(names)})'
    return f"{into} SELECT {', '.join(picked)} FROM {source}{conflict}{back}"


@lru_cache(maxsize=256)
def _update_sql(
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    keep: frozenset[str],
    constants: tuple[str, ...],
    unless_set: str | None = None,
    or_stored: frozenset[str] = frozenset(),
) -> str:
    sets = []
    for c in columns:
        if c in keys:
            continue
        value = _read(table, c)
        if c in keep:
            value = f'coalesce(t."{c}", {value})'
        elif c in or_stored:
            if _is_json(table.c[c].type):  # JSON travels as text: None is the text null, meaning nothing here
                value = f"CAST(NULLIF(v.\"{c}\", 'null') AS JSON)"
            value = f'coalesce({value}, t."{c}")'
        sets.append(f'"{c}" = {value}')
    for c in constants:
        value = f"CAST(:k_{c} AS {_sql_type(table.c[c].type)})"
        sets.append(f'"{c}" = CAST({value} AS JSON)' if _is_json(table.c[c].type) else f'"{c}" = {value}')
    found = " AND ".join(f't."{k}" = v."{k}"' for k in keys)
    only = f' AND t."{unless_set}" IS NULL' if unless_set is not None else ""
    return f'UPDATE "{table.name}" AS t SET {", ".join(sets)} FROM {_unnest(table, columns)} WHERE {found}{only}'


def _unnest(table: Table, columns: tuple[str, ...]) -> str:
    arrays = ", ".join(f"CAST(:a_{c} AS {_array_type(table.c[c].type)})" for c in columns)
    return f"unnest({arrays}) AS v({', '.join(f'{chr(34)}{c}{chr(34)}' for c in columns)})"


def _read(table: Table, column: str) -> str:
    """The column as read from the unnested arrays: JSON travels as text and is parsed by the server."""
    if _is_json(table.c[column].type):
        return f'CAST(v."{column}" AS JSON)'
    return f'v."{column}"'


def _arrays(table: Table, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    arrays: dict[str, Any] = {}
    for c in columns:
        convert = _converter(table, c)
        values = [row[c] for row in rows]
        arrays[f"a_{c}"] = values if convert is None else [convert(v) for v in values]
    return arrays


@lru_cache(maxsize=1024)
def _converter(table: Table, column: str) -> Callable[[Any], Any] | None:
    """What a value of the column goes through on its way to the driver (the column type's own conversion, JSON
    as text); None for most columns: nothing. Resolved once per column: it runs for every value of a batch."""
    kind = table.c[column].type
    process = kind.process_bind_param if isinstance(kind, TypeDecorator) else None
    if _is_json(kind):
        if process is None:
            return _json_text
        return lambda value: _json_text(process(value, _PG))
    if isinstance(kind, UtcDateTime):
        return _utc
    if process is not None:
        return lambda value: process(value, _PG)
    return None


def _bound(table: Table, column: str, value: Any) -> Any:
    """A value as the driver takes it: the column type's own conversion (aware UTC datetimes), JSON as text."""
    convert = _converter(table, column)
    return value if convert is None else convert(value)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()  # None is JSON null, as SQLAlchemy's


def _utc(value: datetime | None) -> datetime | None:
    """An aware UTC datetime as it is (the router's own clock gives those); any other as ``UtcDateTime`` binds it
    (converted to UTC, a naive one refused)."""
    if value is None or value.tzinfo is UTC:
        return value
    return TS.process_bind_param(value, _PG)


def _is_json(kind: TypeEngine[Any]) -> bool:
    impl = kind.impl if isinstance(kind, TypeDecorator) else kind
    return isinstance(impl, JSON)


def _sql_type(kind: TypeEngine[Any]) -> str:
    return "TEXT" if _is_json(kind) else kind.compile(dialect=_PG)


def _array_type(kind: TypeEngine[Any]) -> str:
    return f"{_sql_type(kind)}[]"
