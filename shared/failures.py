"""Why a batch failed, and so what its consumer does next: retry it, or find the record at fault.

Two kinds of failure, told apart explicitly (``is_retriable``), never by a blanket ``except Exception``:

- **Retriable**: the infrastructure is unavailable or busy — the broker or the database cannot be reached,
  a connection dropped, a statement timed out, PostgreSQL cancelled a transaction that lost a race
  (serialization failure, deadlock) or is shutting down. Nothing is wrong with the records: do not commit,
  back off, consume the batch again.
- **Poison**: everything else — a value a store cannot hold (PostgreSQL class 22 "data exception"), a
  constraint violated, a bug raising ``TypeError`` on one odd event. Retrying can never
  succeed and would stop every tenant on the partition, so the consumer splits the batch until it finds the
  record at fault, dead-letters that record with the reason, and applies the rest (``shared/consumer_loop.py``).
  A unique index meeting a record twice (a dedupe key another writer stored meanwhile) lands here too, and
  heals itself there: the split applies the record again, and the handler then finds it known.

An exception may say which it is itself with a ``retriable`` attribute (``BusUnavailable``, ``InvalidEvent``).
"""

from __future__ import annotations

import asyncio
import sqlite3

import httpx
from sqlalchemy import exc as sa_exc

# PostgreSQL SQLSTATE classes and codes that mean "try again later" (Appendix A of the PostgreSQL manual).
_RETRIABLE_CLASSES = frozenset({"08", "53", "57", "58"})  # connection, resources, operator intervention, system
_RETRIABLE_CODES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "55006",  # object_in_use
        "25006",  # read_only_sql_transaction (a failover promoted nothing yet)
    }
)


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error, whatever layer wrapped it (SQLAlchemy → asyncpg)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


def is_retriable(exc: BaseException) -> bool:
    """True if the failure is the infrastructure's, not the records': retry the same batch later."""
    declared = getattr(exc, "retriable", None)
    if isinstance(declared, bool):
        return declared
    if isinstance(exc, asyncio.CancelledError):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError, OSError, httpx.TransportError)):
        return True
    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return True  # pool: connection invalidated, or no connection within the pool timeout
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        code = sqlstate(exc)
        if code is not None:
            return code in _RETRIABLE_CODES or code[:2] in _RETRIABLE_CLASSES
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):  # SQLite: the file is busy, locked or out of reach
            return any(word in str(orig) for word in ("locked", "busy", "unable to open", "disk"))
        # no SQLSTATE: the driver could not talk to the server at all
        return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError))
    code = sqlstate(exc)  # a driver error not wrapped by SQLAlchemy (asyncpg used directly)
    if code is not None:
        return code in _RETRIABLE_CODES or code[:2] in _RETRIABLE_CLASSES
    return False  # aiokafka's errors carry ``retriable`` themselves (checked first)


def reason_of(exc: BaseException) -> str:
    """A short, PII-free reason for a dead-letter header and a log line: the error's class and, for database
    errors, the server's own message (never SQLAlchemy's rendering, which carries the statement's parameters)."""
    name = type(exc).__name__
    detail = str(exc.orig) if isinstance(exc, sa_exc.StatementError) and exc.orig is not None else str(exc)
    code = sqlstate(exc)
    first = detail.strip().splitlines()[0] if detail.strip() else ""
    prefix = f"{name} [{code}]" if code else name
    return f"{prefix}: {first}"[:500] if first else prefix


def reason_kind(exc: BaseException) -> str:
    """A bounded label for the dead-letter metric: the error's class (SQLAlchemy's DBAPI classes for database
    errors: DataError, IntegrityError...)."""
    return type(exc).__name__
