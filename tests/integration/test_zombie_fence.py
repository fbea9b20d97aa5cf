"""The routing fence against a zombie owner. A replica cut off from Kafka keeps the tenant's engine in memory and
still believes it owns the tenant, while the group has given the tenant's partition to another replica that
routes it meanwhile. When the zombie's timers route the tenant again, its cached engine is stale: the version it
reads under the tenant's lock differs from its own, so it must rebuild from the store before deciding anything.
(The fault suite's ``owner_cut_from_kafka`` does this with real processes; here it is done step by step, so a
fence that lets a stale engine decide fails every time.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.router.adapters.db.seed import seed_demo
from services.router.adapters.db.unit_of_work import SqlStore
from services.router.domain.model import Presence
from services.router.handlers.routing_owner import Operation, RoutingStates
from shared.topics import Topics
from tests.conftest import random_name

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def presence(agent_id: str, to: Presence) -> Operation:
    return lambda engine, t: engine.set_presence(agent_id, to, t)


async def stored_presence(repo: SqlStore, tenant: str, agent_id: str) -> Presence:
    async with repo.unit() as u:
        return {a.id: a.presence for a in await u.routing.lock_agents(tenant)}[agent_id]


async def test_a_zombie_owners_stale_engine_is_rebuilt_before_it_decides(repo: SqlStore) -> None:
    tenant = random_name("tn")
    await seed_demo(repo.db, NOW, tenant_id=tenant)
    ada = f"{tenant}-agent-ada"
    zombie, owner = RoutingStates(Topics()), RoutingStates(Topics())
    # the zombie owned the tenant: Ada went online through it, and its engine stays cached
    async with repo.unit() as u:
        await zombie.route(u, tenant, NOW, [presence(ada, Presence.ONLINE)])
    assert zombie.is_cached(tenant)
    # the partition moved: the new owner takes Ada offline
    async with repo.unit() as u:
        await owner.route(u, tenant, NOW + timedelta(seconds=1), [presence(ada, Presence.OFFLINE)])
    assert await stored_presence(repo, tenant, ada) is Presence.OFFLINE
    rebuilds = zombie.rebuilds
    # the zombie, never told, sets Ada online again: its own engine says she already is, the store says not
    async with repo.unit() as u:
        routed = await zombie.route(u, tenant, NOW + timedelta(seconds=2), [presence(ada, Presence.ONLINE)])
    assert zombie.rebuilds == rebuilds + 1, "the zombie decided on its stale engine"
    assert await stored_presence(repo, tenant, ada) is Presence.ONLINE
    engine = zombie.current(tenant)
    assert engine is not None and not engine.set_presence(ada, Presence.ONLINE, 0.0)  # it knows she is online now
    assert routed.outbox, "the change was announced on the feeds"
