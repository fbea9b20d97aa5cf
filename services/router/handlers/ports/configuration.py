"""Queues and agents as supervisors manage them (the routing configuration), tenant-scoped
(``handlers/configuration.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol


class Configuration(Protocol):
    async def queue(self, tenant_id: str, queue_id: str) -> dict[str, Any] | None: ...

    async def unknown_queues(self, tenant_id: str, queue_ids: list[str]) -> list[str]:
        """Those of ``queue_ids`` the tenant has no queue for, sorted."""
        ...

    async def clear_default_queue(self, tenant_id: str) -> None: ...

    async def add_queue(self, tenant_id: str, values: dict[str, Any], now: datetime) -> str:
        """Returns the new queue's id; ``InvalidCommand`` if the tenant has a queue of that name."""
        ...

    async def update_queue(self, tenant_id: str, queue_id: str, values: dict[str, Any]) -> None:
        """``InvalidCommand`` if another queue of the tenant has that name."""
        ...

    async def open_in_queue(self, tenant_id: str, queue_id: str) -> int:
        """How many open conversations are in the queue."""
        ...

    async def remove_queue(self, tenant_id: str, queue_id: str) -> None: ...

    async def waiting(self, tenant_id: str, queue_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """Who waits in the queue, in the order they will be served, with position and wait so far."""
        ...

    async def agent(self, tenant_id: str, agent_id: str) -> dict[str, Any] | None: ...

    async def add_agent(self, tenant_id: str, values: dict[str, Any], now: datetime) -> str: ...

    async def update_agent(self, tenant_id: str, agent_id: str, values: dict[str, Any]) -> None: ...

    async def agent_assignments(self, tenant_id: str, agent_id: str) -> tuple[int, int]:
        """(live, all): the assignments the agent holds now, and every one it ever had."""
        ...

    async def retire_agent(self, tenant_id: str, agent_id: str) -> None:
        """Offline and in no queue, the row kept: past assignments still point at it."""
        ...

    async def remove_agent(self, tenant_id: str, agent_id: str) -> None: ...

    async def profile(self, tenant_id: str, profile_id: str) -> dict[str, Any] | None: ...

    async def profiles(self, tenant_id: str) -> list[dict[str, Any]]: ...

    async def add_profile(self, tenant_id: str, name: str, config: dict[str, Any], now: datetime) -> str:
        """Returns the new profile's id; ``InvalidCommand`` if the tenant has a profile of that name."""
        ...

    async def update_profile(self, tenant_id: str, profile_id: str, values: dict[str, Any]) -> None: ...

    async def agent_loads(self, tenant_id: str, agent_id: str) -> dict[str, int]:
        """What the agent holds now (offers included), per channel."""
        ...
