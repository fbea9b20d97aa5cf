"""Agents' live console connections (feeds), across replicas: what presence is inferred from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.router.domain.model import Presence


@dataclass(frozen=True, slots=True)
class Disconnected:
    """An agent with no live connection: since when none was seen, and their presence as stored."""

    tenant_id: str
    agent_id: str
    lost_at: datetime
    presence: Presence
    reason: str | None
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class NewConnection:
    """An agent's console feed (``kind``: sse or websocket) connected to a replica of a deployment."""

    id: str
    tenant_id: str
    agent_id: str
    replica: str
    kind: str
    deployment: str = ""


class Connections(Protocol):
    async def open(self, connection: NewConnection, now: datetime) -> None: ...

    async def close(self, tenant_id: str, connection_id: str, now: datetime) -> None: ...

    async def refresh(self, replica: str, now: datetime) -> int:
        """This replica's open connections are alive at ``now``; returns how many."""
        ...

    async def live(self, tenant_id: str, agent_id: str, stale_before: datetime) -> bool:
        """Whether the agent has an open connection refreshed since ``stale_before``."""
        ...

    async def disconnected(self, stale_before: datetime, deployment: str = "") -> list[Disconnected]:
        """Agents not offline that once had a connection of this deployment and have no live one now (open ones
        not refreshed since ``stale_before`` count as dropped when last refreshed: their replica died)."""
        ...

    async def prune(self, before: datetime) -> None:
        """Forget connections that ended before ``before``."""
        ...
