"""The store over SQLAlchemy Core (PostgreSQL or the embedded SQLite): a unit of work per transaction, with one
repository per aggregate (the Protocols in ``handlers/ports``). Statements are set-based, so a batch of N events
costs a fixed number of round trips, not N. The same contract suite runs it on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db.api_keys import SqlApiKeys
from services.router.adapters.db.audit import SqlAudit
from services.router.adapters.db.calls import SqlCalls
from services.router.adapters.db.command_outcomes import SqlCommandOutcomes
from services.router.adapters.db.configuration import SqlConfiguration
from services.router.adapters.db.connections import SqlConnections
from services.router.adapters.db.conversations import SqlConversations
from services.router.adapters.db.customers import SqlCustomers
from services.router.adapters.db.deadletters import SqlDeadLetters
from services.router.adapters.db.feeds import SqlFeeds
from services.router.adapters.db.follow_ups import SqlFollowUps
from services.router.adapters.db.outbox import SqlOutbox
from services.router.adapters.db.replies import SqlReplies
from services.router.adapters.db.routing import SqlRouting
from services.router.adapters.db.sla_timers import SqlSlaTimers
from services.router.adapters.db.surveys import SqlSurveys
from services.router.adapters.db.webhook_deliveries import SqlWebhookDeliveries
from shared.store import Database


class SqlUnitOfWork:
    """One transaction's repositories. ``conn`` is there for the adapters' own modules and for tests; handlers
    see only the repositories."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        self.customers = SqlCustomers(conn, dialect)
        self.conversations = SqlConversations(conn, dialect)
        self.routing = SqlRouting(conn, dialect)
        self.feeds = SqlFeeds(conn, dialect)
        self.outbox = SqlOutbox(conn, dialect)
        self.outcomes = SqlCommandOutcomes(conn, dialect)
        self.deadletters = SqlDeadLetters(conn, dialect)
        self.configuration = SqlConfiguration(conn, dialect)
        self.api_keys = SqlApiKeys(conn, dialect)
        self.audit = SqlAudit(conn, dialect)
        self.replies = SqlReplies(conn, dialect)
        self.surveys = SqlSurveys(conn, dialect)
        self.sla_timers = SqlSlaTimers(conn, dialect)
        self.follow_ups = SqlFollowUps(conn, dialect)
        self.calls = SqlCalls(conn, dialect)
        self.connections = SqlConnections(conn, dialect)
        self.webhook_deliveries = SqlWebhookDeliveries(conn, dialect)
        self._after_commit: list[Callable[[], None]] = []

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this unit's transaction has committed (never after a rollback)."""
        self._after_commit.append(callback)


class SqlStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[SqlUnitOfWork]:
        async with self.db.transaction() as conn:
            unit = SqlUnitOfWork(conn, self.db.dialect)
            yield unit
        for callback in unit._after_commit:
            callback()

    @asynccontextmanager
    async def reading(self, *, snapshot: bool = True) -> AsyncIterator[SqlUnitOfWork]:
        async with self.db.read(snapshot=snapshot) as conn:
            yield SqlUnitOfWork(conn, self.db.dialect)

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A plain read connection, for the read models (``adapters/views``)."""
        async with self.db.read() as conn:
            yield conn
