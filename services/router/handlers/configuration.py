"""Supervisors' changes to the routing configuration: queues and agents, created, changed and deleted.

Each change is one unit of work that also bumps the tenant's routing version, so every router rebuilds the
tenant's routing state (``handlers/routing_owner.py``) before its next decision, and puts a tick for the
tenant on the routing command log (through the outbox, in the same transaction): the tenant's owner applies it
at once, so waiting work that the change lets an agent take (an agent created online, a capacity raised, an
agent added to a queue, a queue's rule or hours changed) is offered or assigned without waiting for traffic.
Values arrive validated (the HTTP models and ``domain/routing/queue_config``); what needs the stored
configuration is checked here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.routing.capacity import profile_from
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock, Store, UnitOfWork
from shared.routing_commands import Command, Tick
from shared.topics import Topics


def _referenced_queues(values: dict[str, Any]) -> list[str]:
    """Queues a queue's routing sends work to: overflow, and SLA escalation on warning or breach."""
    routing = values.get("routing") or {}
    sla = routing.get("sla") or {}
    targets = [routing.get("overflow_to")] + [
        (sla.get(f"on_{s}") or {}).get("escalate_to") for s in ("warning", "breach")
    ]
    return [q for q in targets if q]


@dataclass(eq=False)
class Configuration:
    store: Store
    clock: Clock
    relay: OutboxRelay
    topics: Topics

    @asynccontextmanager
    async def _changing(self, tenant_id: str) -> AsyncIterator[UnitOfWork]:
        """The one place a configuration change invalidates the tenant's routing state, in its transaction
        (a change that fails rolls back and bumps nothing)."""
        async with self.store.unit() as u:
            # the tenant's lock first, as every routing pass takes it: a change and a routing pass of the tenant
            # (the tick the previous change put on the log, say) queue up instead of locking rows in opposite orders
            await u.routing.lock_tenants([tenant_id])
            yield u
            await u.routing.bump_routing_version(tenant_id)
            await u.outbox.add([Command.of(tenant_id, Tick()).record(self.topics)], self.clock())
        await self.relay.flush()

    async def queue(self, tenant_id: str, queue_id: str) -> dict[str, Any]:
        async with self.store.reading() as u:
            return await _queue(u, tenant_id, queue_id)

    async def waiting(self, tenant_id: str, queue_id: str, limit: int) -> list[dict[str, Any]]:
        """Waiting conversations in the order they will be served, with position and wait so far."""
        now = self.clock()
        async with self.store.reading() as u:
            await _queue(u, tenant_id, queue_id)
            return await u.configuration.waiting(tenant_id, queue_id, now, limit)

    async def create_queue(self, tenant_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """A new queue; the tenant has one default queue, so a new default replaces the old one."""
        now = self.clock()
        async with self._changing(tenant_id) as u:
            await _known_queues(u, tenant_id, _referenced_queues(values))
            if values.get("is_default"):
                await u.configuration.clear_default_queue(tenant_id)
            queue_id = await u.configuration.add_queue(tenant_id, values, now)
            return await _queue(u, tenant_id, queue_id)

    async def update_queue(self, tenant_id: str, queue_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self._changing(tenant_id) as u:
            await _queue(u, tenant_id, queue_id)
            await _known_queues(u, tenant_id, _referenced_queues(values))
            if values.get("is_default"):
                await u.configuration.clear_default_queue(tenant_id)
            if values:
                await u.configuration.update_queue(tenant_id, queue_id, values)
            return await _queue(u, tenant_id, queue_id)

    async def delete_queue(self, tenant_id: str, queue_id: str) -> None:
        """Only an empty queue goes: its open conversations are transferred first."""
        async with self._changing(tenant_id) as u:
            await _queue(u, tenant_id, queue_id)
            open_here = await u.configuration.open_in_queue(tenant_id, queue_id)
            if open_here:
                raise InvalidCommand(f"{open_here} open conversations are in this queue; transfer them first")
            await u.configuration.remove_queue(tenant_id, queue_id)

    async def agent(self, tenant_id: str, agent_id: str) -> dict[str, Any]:
        """The agent, with what they hold now: per channel, and in units of their profile."""
        async with self.store.reading() as u:
            found = await _agent(u, tenant_id, agent_id)
            channels = await u.configuration.agent_loads(tenant_id, agent_id)
            row = await u.configuration.profile(tenant_id, found["profile_id"]) if found.get("profile_id") else None
            profile = profile_from(row["id"], row["name"], row["config"]) if row else None
            units = profile.units(channels) if profile else float(sum(channels.values()))
            load = {"channels": channels, "units": units, "capacity_units": profile.capacity if profile else None}
            return found | {"load": load}

    async def profiles(self, tenant_id: str) -> list[dict[str, Any]]:
        async with self.store.reading() as u:
            return await u.configuration.profiles(tenant_id)

    async def profile(self, tenant_id: str, profile_id: str) -> dict[str, Any]:
        async with self.store.reading() as u:
            return await _profile(u, tenant_id, profile_id)

    async def create_profile(self, tenant_id: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
        async with self._changing(tenant_id) as u:
            profile_id = await u.configuration.add_profile(tenant_id, name, config, self.clock())
            return await _profile(u, tenant_id, profile_id)

    async def update_profile(self, tenant_id: str, profile_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """A changed profile applies to every agent who has it, at once (the routing state is rebuilt)."""
        async with self._changing(tenant_id) as u:
            await _profile(u, tenant_id, profile_id)
            if values:
                await u.configuration.update_profile(tenant_id, profile_id, values)
            return await _profile(u, tenant_id, profile_id)

    async def create_agent(self, tenant_id: str, values: dict[str, Any]) -> dict[str, Any]:
        now = self.clock()
        async with self._changing(tenant_id) as u:
            await _known_queues(u, tenant_id, values["queue_ids"])
            await _known_profile(u, tenant_id, values)
            agent_id = await u.configuration.add_agent(tenant_id, values, now)
            return await _agent(u, tenant_id, agent_id)

    async def update_agent(self, tenant_id: str, agent_id: str, values: dict[str, Any]) -> dict[str, Any]:
        async with self._changing(tenant_id) as u:
            await _agent(u, tenant_id, agent_id)
            if "queue_ids" in values:
                await _known_queues(u, tenant_id, values["queue_ids"])
            await _known_profile(u, tenant_id, values)
            if values:
                await u.configuration.update_agent(tenant_id, agent_id, values)
            return await _agent(u, tenant_id, agent_id)

    async def delete_agent(self, tenant_id: str, agent_id: str) -> None:
        """Only an agent holding nothing goes. One with past assignments is retired (offline, in no queue)
        rather than deleted: its history keeps pointing at it."""
        async with self._changing(tenant_id) as u:
            await _agent(u, tenant_id, agent_id)
            live, every = await u.configuration.agent_assignments(tenant_id, agent_id)
            if live:
                raise InvalidCommand(f"the agent still holds {live} conversations; transfer or resolve them first")
            if every:
                await u.configuration.retire_agent(tenant_id, agent_id)
            else:
                await u.configuration.remove_agent(tenant_id, agent_id)


async def _queue(u: UnitOfWork, tenant_id: str, queue_id: str) -> dict[str, Any]:
    found = await u.configuration.queue(tenant_id, queue_id)
    if found is None:
        raise NotFound(f"no queue {queue_id}")
    return found


async def _agent(u: UnitOfWork, tenant_id: str, agent_id: str) -> dict[str, Any]:
    found = await u.configuration.agent(tenant_id, agent_id)
    if found is None:
        raise NotFound(f"no agent {agent_id}")
    return found


async def _profile(u: UnitOfWork, tenant_id: str, profile_id: str) -> dict[str, Any]:
    found = await u.configuration.profile(tenant_id, profile_id)
    if found is None:
        raise NotFound(f"no profile {profile_id}")
    return found


async def _known_profile(u: UnitOfWork, tenant_id: str, values: dict[str, Any]) -> None:
    if values.get("profile_id") and await u.configuration.profile(tenant_id, values["profile_id"]) is None:
        raise InvalidCommand(f"unknown profile: {values['profile_id']}")


async def _known_queues(u: UnitOfWork, tenant_id: str, queue_ids: list[str]) -> None:
    if not queue_ids:
        return
    missing = await u.configuration.unknown_queues(tenant_id, queue_ids)
    if missing:
        raise InvalidCommand(f"unknown queues: {', '.join(missing)}")
