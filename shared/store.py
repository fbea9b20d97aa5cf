"""The store interface shared by services: an async SQLAlchemy engine and one way to run a transaction.

PostgreSQL (asyncpg) in production, SQLite (aiosqlite) for the embedded desk. SQLite allows one writer at a
time; instead of letting two transactions collide on SQLITE_BUSY we serialize writers in-process, which is
what a single embedded process needs.

PostgreSQL over TLS: the sslmode family of libpq (disable, require, verify-ca, verify-full) from settings or,
as libpq takes them, from the URL's query (``?sslmode=verify-full&sslrootcert=/etc/ssl/ca.pem``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shared.settings import Settings

SSL_MODES = ("disable", "require", "verify-ca", "verify-full")
_LIBPQ_PARAMS = ("sslmode", "sslrootcert", "sslcert", "sslkey")  # asyncpg takes none of these as arguments


class StoreUnavailable(RuntimeError):
    """The database could not be reached: retriable, do not commit the bus offsets."""

    retriable = True


@dataclass(frozen=True)
class DatabaseTls:
    """PostgreSQL TLS as libpq's sslmode names it: ``require`` encrypts without checking the server,
    ``verify-ca`` also checks its chain against ``rootcert`` (or the system's CAs), ``verify-full`` also that
    the certificate names the host connected to."""

    mode: str
    rootcert: str | None = None
    cert: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in SSL_MODES:
            raise ValueError(f"sslmode {self.mode!r} is none of {', '.join(SSL_MODES)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseTls | None:
        if settings.database_ssl_mode is None:
            return None
        return cls(
            settings.database_ssl_mode,
            settings.database_ssl_rootcert,
            settings.database_ssl_cert,
            settings.database_ssl_key,
        )

    def ssl_arg(self) -> ssl.SSLContext | bool:
        """asyncpg's ``ssl`` argument: a context makes TLS mandatory, never a fallback to plain text."""
        if self.mode == "disable":
            return False
        if self.mode == "require":
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=self.rootcert)  # CERT_REQUIRED
            context.check_hostname = self.mode == "verify-full"
        if self.cert:
            context.load_cert_chain(self.cert, self.key)
        return context


class Database:
    def __init__(self, url: str, *, pool_size: int = 10, tls: DatabaseTls | None = None) -> None:
        parsed = make_url(url)
        # libpq's TLS parameters in the URL, unless the settings name them (then those win)
        in_url = {k: str(parsed.query[k]) for k in _LIBPQ_PARAMS if k in parsed.query}
        if in_url:
            parsed = parsed.difference_update_query(_LIBPQ_PARAMS)
            if tls is None and "sslmode" in in_url and in_url["sslmode"] not in ("allow", "prefer"):
                tls = DatabaseTls(
                    in_url["sslmode"], in_url.get("sslrootcert"), in_url.get("sslcert"), in_url.get("sslkey")
                )
        self.url = url
        self.tls = tls
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size)
            if tls is not None:
                kwargs["connect_args"] = {"ssl": tls.ssl_arg()}
        # orjson for JSON columns: a rebuild reads three JSON values per open conversation, and the standard
        # library's decoder was most of its time
        kwargs.update(json_serializer=_json_dumps, json_deserializer=orjson.loads)
        self.engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        self._writer = asyncio.Lock()
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine.sync_engine, "checkout", _closed_is_stale)

    @classmethod
    def from_settings(cls, settings: Settings, *, pool_size: int = 10) -> Database:
        """The store a service process uses: SWITCHBOARD_DATABASE_URL with the settings' TLS."""
        return cls(settings.database_url, pool_size=pool_size, tls=DatabaseTls.from_settings(settings))

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One atomic unit of work: commits on success, rolls back on any exception."""
        if self.is_sqlite:
            async with self._writer, self.engine.begin() as conn:
                yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    @asynccontextmanager
    async def read(self, *, snapshot: bool = True) -> AsyncIterator[AsyncConnection]:
        """A connection for reads. ``snapshot``: in one read-only transaction, so that all its reads see one
        state (a BEGIN and a ROLLBACK around them); without, each read is a statement of its own, with no round
        trip besides it: for one read, or reads that do not need to agree (a poll, a lookup on the hot path)."""
        async with self.engine.connect() as conn:
            if not snapshot:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def close(self) -> None:
        await self.engine.dispose()


def _closed_is_stale(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (a restart, a terminated backend, a reset) is replaced at
    checkout: asyncpg notices the closed socket as it happens, so this costs no round trip. SQLAlchemy's
    ``pool_pre_ping`` would ask the server each time (BEGIN, an empty query, ROLLBACK: three round trips before
    every transaction)."""
    if dbapi_conn.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this connection")


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the API read while the router writes; foreign keys are off by default in SQLite.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
