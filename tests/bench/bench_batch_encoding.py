"""What a batch of rows costs to send to PostgreSQL, as one array per column or as one JSON document: the two
ways a set-based write could encode it (``services/router/adapters/db/bulk.py`` sends arrays; docs/performance.md
says why JSON, cheaper for the client, was measured and not kept).

    python -m tests.bench.bench_batch_encoding [--rows 60] [--batches 1500]

- Setup: the local servers (started as ``make test`` starts them, unless ``SWITCHBOARD_DATABASE_URL`` names
  one), an UNLOGGED table of the ``messages`` shape (15 text columns, 3 timestamps, 3 JSON), dropped after.
- Measured: ``--batches`` inserts of ``--rows`` rows each, one statement each, through asyncpg: the client's
  CPU (``time.process_time``: building the parameters and the driver's encoding) and the CPU of its server
  backend (``/proc/<pid>/stat``, so the server must run on this machine), per row; each encoding twice, in
  turn. Printed as JSON, not recorded: it explains a choice (``docs/performance.md``), it is not a target."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from shared.ids import new_id
from tests.bench.bare import dsn
from tests.bench.proc_cpu import cpu_s
from tests.support.servers import ensure_servers

_COLUMNS = [
    *[
        (name, "text")
        for name in [
            "tenant_id",
            "id",
            "event_id",
            "conversation_id",
            "customer_id",
            "channel",
            "direction",
            "channel_message_id",
            "sender_kind",
            "thread_ref",
            "author",
            "status",
            "error",
            "subject",
            "text",
        ]
    ],
    ("sent_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("attachments", "json"),
    ("sanitized", "json"),
    ("acknowledgement", "json"),
]
_JSON_COLUMNS = tuple(name for name, kind in _COLUMNS if kind == "json")
_TABLE = "bench_batch_encoding"


def _rows(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "tenant_id": "acme",
            "id": new_id(),
            "event_id": f"evt-{new_id()}",
            "conversation_id": new_id(),
            "customer_id": new_id(),
            "channel": "chat",
            "direction": "inbound",
            "channel_message_id": f"m{i}",
            "sender_kind": "customer",
            "thread_ref": None,
            "author": None,
            "status": None,
            "error": None,
            "subject": None,
            "text": "Hello, my order #1234 has not arrived yet",
            "sent_at": now,
            "received_at": now,
            "created_at": now,
            "attachments": [],
            "sanitized": None,
            "acknowledgement": {"language": "en", "promised_at": now.isoformat(), "expected_wait_s": 120},
        }
        for i in range(n)
    ]


def _read(name: str, kind: str) -> str:
    return f"CAST(v.{name} AS JSON)" if kind == "json" else f"v.{name}"  # JSON travels as text either way


_NAMES = ", ".join(name for name, _ in _COLUMNS)
_PICKED = ", ".join(_read(name, kind) for name, kind in _COLUMNS)
_ARRAYS_SQL = (
    f"INSERT INTO {_TABLE} SELECT {_PICKED} FROM unnest("
    + ", ".join(f"${n + 1}::{'text' if kind == 'json' else kind}[]" for n, (_, kind) in enumerate(_COLUMNS))
    + f") AS v({_NAMES})"
)
_JSON_SQL = (
    f"INSERT INTO {_TABLE} SELECT {_PICKED} FROM json_to_recordset($1::json) AS v("
    + ", ".join(f"{name} {'text' if kind == 'json' else kind}" for name, kind in _COLUMNS)
    + ")"
)


def _as_arrays(rows: list[dict[str, Any]]) -> list[Any]:
    out = []
    for name, kind in _COLUMNS:
        values = [row[name] for row in rows]
        out.append([orjson.dumps(v).decode() for v in values] if kind == "json" else values)
    return out


def _as_json(rows: list[dict[str, Any]]) -> list[Any]:
    converted = [{**row, **{n: orjson.dumps(row[n]).decode() for n in _JSON_COLUMNS}} for row in rows]
    return [orjson.dumps(converted).decode()]


async def _measure(
    conn: asyncpg.Connection, sql: str, encode: Callable[[list[dict[str, Any]]], list[Any]], rows: int, batches: int
) -> dict[str, float]:
    pid = await conn.fetchval("SELECT pg_backend_pid()")

    def backend_cpu() -> float:
        seconds = cpu_s(pid)
        assert seconds is not None, f"the server backend {pid} is not a process of this machine"
        return seconds

    batch = _rows(rows)
    for _ in range(50):  # the statement prepared, the caches warm
        await conn.execute(sql, *encode(batch))
    await conn.execute(f"TRUNCATE {_TABLE}")
    server, client, wall = backend_cpu(), time.process_time(), time.perf_counter()
    for _ in range(batches):
        await conn.execute(sql, *encode(batch))
    per_row = 1e6 / (batches * rows)
    return {
        "client_cpu_us_per_row": round((time.process_time() - client) * per_row, 2),
        "server_cpu_us_per_row": round((backend_cpu() - server) * per_row, 2),
        "wall_us_per_row": round((time.perf_counter() - wall) * per_row, 2),
    }


async def main(rows: int, batches: int) -> dict[str, Any]:
    database_url, _ = ensure_servers()
    conn = await asyncpg.connect(dsn(database_url))
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {_TABLE}")
        await conn.execute(f"CREATE UNLOGGED TABLE {_TABLE} ({', '.join(f'{n} {k}' for n, k in _COLUMNS)})")
        runs: dict[str, list[dict[str, float]]] = {"arrays": [], "json": []}
        for _ in range(2):
            runs["arrays"].append(await _measure(conn, _ARRAYS_SQL, _as_arrays, rows, batches))
            runs["json"].append(await _measure(conn, _JSON_SQL, _as_json, rows, batches))
        return {"workload": {"columns": len(_COLUMNS), "rows_per_statement": rows, "statements": batches}, **runs}
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {_TABLE}")
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=60)
    parser.add_argument("--batches", type=int, default=1500)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows, args.batches)), indent=2))
