"""Admins' API keys: created (shown once: only the hash is stored), rotated and revoked. A revocation takes
effect at once on this replica and within the key cache's lifetime on the others."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.handlers.ports import Clock, Store, UnitOfWork
from services.router.handlers.ports.api_keys import KeyCache


class AccessKeys:
    def __init__(self, store: Store, clock: Clock, cache: KeyCache, new_key: Callable[[], str]) -> None:
        self.store = store
        self.clock = clock
        self.cache = cache
        self.new_key = new_key  # random: passed in, like the clock

    async def listed(self, tenant_id: str) -> list[dict[str, Any]]:
        async with self.store.reading() as u:
            return await u.api_keys.listed(tenant_id)

    async def create(self, tenant_id: str, name: str, role: str, agent_id: str | None) -> dict[str, Any]:
        """The answer holds ``key``, the only time it is ever shown."""
        if (role == "agent") != (agent_id is not None):
            raise InvalidCommand("agent keys name their agent_id; other roles have none")
        async with self.store.unit() as u:
            if agent_id is not None and not await u.routing.agent_exists(tenant_id, agent_id):
                raise NotFound(f"no agent {agent_id}")
            return await self._add(u, tenant_id, name, role, agent_id)

    async def revoke(self, tenant_id: str, key_id: str) -> dict[str, Any]:
        async with self.store.unit() as u:
            revoked = await _revoke(u, tenant_id, key_id, self.clock())
        self.cache.forget(revoked.pop("key_hash"))
        return revoked

    async def rotate(self, tenant_id: str, key_id: str) -> dict[str, Any]:
        """A new key with the old one's name, role and agent, and the old one revoked, in one transaction. An
        agent key whose agent is gone is still revoked (it acts as no one), with no successor: 404."""
        async with self.store.unit() as u:
            old = await _revoke(u, tenant_id, key_id, self.clock())
            agent_id = old["agent_id"]
            successor = None
            if agent_id is None or await u.routing.agent_exists(tenant_id, agent_id):
                successor = await self._add(u, tenant_id, old["name"], old["role"], agent_id)
        self.cache.forget(old["key_hash"])
        if successor is None:
            raise NotFound(f"no agent {agent_id}")
        return successor

    async def _add(self, u: UnitOfWork, tenant_id: str, name: str, role: str, agent_id: str | None) -> dict[str, Any]:
        key = self.new_key()
        row = await u.api_keys.add(tenant_id, key, role, name, self.clock(), agent_id)
        return {
            "id": row["id"],
            "key": key,
            "prefix": row["prefix"],
            "name": name,
            "role": role,
            "agent_id": agent_id,
        }


async def _revoke(u: UnitOfWork, tenant_id: str, key_id: str, now: datetime) -> dict[str, Any]:
    revoked = await u.api_keys.revoke(tenant_id, key_id, now)
    if revoked is None:
        raise NotFound(f"no API key {key_id}")
    return revoked
