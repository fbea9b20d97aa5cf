"""API keys as admins manage them (``handlers/access.py``): stored as a hash, never the key."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class ApiKeys(Protocol):
    async def add(
        self, tenant_id: str, key: str, role: str, name: str, now: datetime, agent_id: str | None = None
    ) -> dict[str, Any]:
        """Store ``key`` (its hash and prefix) unless it is stored already; returns the key's row as listed
        (id, name, prefix, role, agent_id, created_at, revoked_at)."""
        ...

    async def revoke(self, tenant_id: str, key_id: str, now: datetime) -> dict[str, Any] | None:
        """Revoke (idempotent); the key's row as listed plus its ``key_hash``, or None if the tenant has no
        such key."""
        ...

    async def listed(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's keys by prefix, name and role, oldest first (never the keys)."""
        ...


class KeyCache(Protocol):
    def forget(self, digest: str) -> None:
        """A key revoked through this replica stops working here at once."""
