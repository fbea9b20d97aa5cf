"""Presence from connections, across replicas: each replica records the agent feeds (SSE, WebSocket) it serves
in ``agent_connections`` and refreshes them every heartbeat; any replica's sweep finds agents whose last
connection dropped (or whose replica went silent) and puts a ``set_presence`` command on the tenant's routing
log for the owner to apply: away after the grace time (open offers go to someone else), offline after the
longer one (conversations go back to their queues). The owner checks again that no connection came back."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from services.router.domain.presence import DISCONNECTED, inferred
from services.router.handlers.outbox import OutboxWriter
from services.router.handlers.ports.connections import NewConnection
from shared.ids import new_id
from shared.routing_commands import Command, SetPresence
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass(eq=False)
class PresenceWatch(OutboxWriter):
    topics: Topics
    replica: str
    grace_s: float
    offline_s: float
    heartbeat_s: float
    deployment: str = ""  # the routers sharing this routing log: presence is inferred from their connections

    @property
    def stale(self) -> timedelta:
        """A replica silent this long is taken for dead."""
        return timedelta(seconds=3 * self.heartbeat_s)

    async def opened(self, tenant_id: str, agent_id: str, kind: str) -> str:
        """An agent's feed connected to this replica: returns the connection's id for ``closed``."""
        connection_id = new_id()
        async with self.repo.unit() as u:
            connection = NewConnection(connection_id, tenant_id, agent_id, self.replica, kind, self.deployment)
            await u.connections.open(connection, self.clock())
        return connection_id

    async def closed(self, tenant_id: str, connection_id: str) -> None:
        async with self.repo.unit() as u:
            await u.connections.close(tenant_id, connection_id, self.clock())

    async def beat(self) -> int:
        """Refresh this replica's connections, then infer presence from everyone's. Returns how many presence
        changes it asked the owners for."""
        now = self.clock()
        async with self.repo.unit() as u:
            await u.connections.refresh(self.replica, now)
            commands = []
            for d in await u.connections.disconnected(now - self.stale, self.deployment):
                target = inferred(d.presence, d.reason, d.changed_at, d.lost_at, now, self.grace_s, self.offline_s)
                if target is None:
                    continue
                # one command per drop and target: every replica's sweep names the same one, applied once
                key = f"presence\x1f{d.agent_id}\x1f{target.value}\x1f{d.lost_at.isoformat()}"
                body = SetPresence(agent_id=d.agent_id, presence=target.value, reason=DISCONNECTED)
                commands.append(Command.of(d.tenant_id, body, key).record(self.topics))
                log.info("presence.inferred", extra={"tenant": d.tenant_id, "agent": d.agent_id, "to": target.value})
            await u.outbox.add(commands, now)
            await u.connections.prune(now - timedelta(seconds=2 * self.offline_s) - self.stale)
        if commands:
            await self.relay.flush()
        return len(commands)
