"""The desk-as-code commands' I/O: the store at SWITCHBOARD_DATABASE_URL, built as the router's composition root
builds it (``services/router/bootstrap.py``) but with no bus, consumer or timer; every configuration change goes
through ``handlers/configuration.py`` ``Configuration``, the handler the REST API calls.

A change's transaction bumps the tenant's routing version (every router rebuilds the tenant's routing state
before its next decision) and leaves a routing tick in the outbox, which the running routers' relay publishes
within a second (``entrypoints/timers.py`` ``relay_outbox``): this process has no bus to publish it on, and
needs none. With no router running, the tick waits in the outbox for the first to start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.desk_as_code.plan import Change, CurrentDesk, Ids, Plan, agent_write, current_desk, queue_write
from services.router.adapters.db import tables as t
from services.router.adapters.db.api_keys import generate_key
from services.router.adapters.db.migrate import upgrade
from services.router.adapters.db.unit_of_work import SqlStore
from services.router.adapters.views import queries
from services.router.handlers.configuration import Configuration
from services.router.handlers.outbox import OutboxRelay
from shared.bus_memory import MemoryBus
from shared.events import utcnow
from shared.settings import Settings
from shared.store import Database
from shared.topics import Topics

ADMIN_KEY_NAME = "first admin (switchboard tenant create)"


class TenantExists(Exception):
    """A tenant of that id is there already: creating it again would hand out a second first admin key."""


class _LeftForTheRouters(OutboxRelay):
    """Leaves the outbox to the routers' relay (the module's docstring says why)."""

    async def flush(self) -> int:
        return 0


@dataclass(frozen=True)
class DeskStore:
    store: SqlStore
    configuration: Configuration

    @classmethod
    @asynccontextmanager
    async def opened(cls, settings: Settings) -> AsyncIterator[DeskStore]:
        """The store, migrated first when SWITCHBOARD_AUTO_MIGRATE says so (as the router does at start-up)."""
        db = Database(settings.database_url, pool_size=2)
        try:
            if settings.auto_migrate:
                await upgrade(db)
            store = SqlStore(db)
            relay = _LeftForTheRouters(store, MemoryBus(), topic_prefix=settings.topic_prefix)
            yield cls(store, Configuration(store, utcnow, relay, Topics(settings.topic_prefix)))
        finally:
            await db.close()

    async def tenant_exists(self, tenant_id: str) -> bool:
        async with self.store.reading() as u:
            return await _tenant_row(u.conn, tenant_id)

    async def create_tenant(self, tenant_id: str, name: str) -> str:
        """The tenant and its first admin API key, in one transaction; returns the key (stored as its hash
        only, as ``handlers/access.py`` stores keys). ``TenantExists`` if the id is taken."""
        key = generate_key()
        try:
            async with self.store.unit() as u:
                if await _tenant_row(u.conn, tenant_id):
                    raise TenantExists(tenant_id)
                await u.conn.execute(insert(t.tenants).values(id=tenant_id, name=name, created_at=utcnow()))
                await u.api_keys.add(tenant_id, key, "admin", ADMIN_KEY_NAME, utcnow())
        except IntegrityError as exc:  # created by someone else between the check and the insert
            raise TenantExists(tenant_id) from exc
        return key

    async def current(self, tenant_id: str) -> CurrentDesk:
        """The tenant's profiles, queues and agents as stored, read in one transaction."""
        async with self.store.reading() as u:
            profiles = await u.configuration.profiles(tenant_id)
            queues = [await u.configuration.queue(tenant_id, q["id"]) for q in await queries.queues(u.conn, tenant_id)]
            agents = [await u.configuration.agent(tenant_id, a["id"]) for a in await queries.agents(u.conn, tenant_id)]
        return current_desk(profiles, [q for q in queues if q], [a for a in agents if a])

    async def apply(self, plan: Plan, current: CurrentDesk, done: Callable[[Change], None]) -> None:
        """The plan's writes in its order (profiles, queues, agents), each through the handler in a transaction
        of its own; ``done`` hears of each once it is committed. A queue whose routing names a queue or agent
        created after it is completed last, once they exist."""
        tenant, ids, cfg = plan.tenant, Ids.of(current), self.configuration
        incomplete: list[Change] = []
        for change in plan.writes:
            if change.kind == "profile":
                if change.id is None:
                    created = await cfg.create_profile(tenant, change.name, change.values)
                    ids.profiles[change.name] = created["id"]
                else:
                    await cfg.update_profile(tenant, change.id, {"config": change.values})
            elif change.kind == "queue":
                values, complete = queue_write(change, ids)
                if change.id is None:
                    ids.queues[change.name] = (await cfg.create_queue(tenant, values))["id"]
                else:
                    await cfg.update_queue(tenant, change.id, values)
                if not complete:
                    incomplete.append(change)
            else:
                values = agent_write(change, ids)
                if change.id is None:
                    ids.agents[change.name] = (await cfg.create_agent(tenant, values))["id"]
                else:
                    await cfg.update_agent(tenant, change.id, values)
            done(change)
        for change in incomplete:
            values, complete = queue_write(replace(change, action="create"), ids)
            assert complete, "plan.py checked every reference exists in the file or on the desk"
            await cfg.update_queue(tenant, ids.queues[change.name], {"routing": values["routing"]})


async def _tenant_row(conn: AsyncConnection, tenant_id: str) -> bool:
    return (await conn.execute(select(t.tenants.c.id).where(t.tenants.c.id == tenant_id))).first() is not None
