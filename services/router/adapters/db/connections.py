"""The ``agent_connections`` table (the ``Connections`` port)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, case, delete, func, insert, or_, select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from services.router.domain.model import Presence
from services.router.handlers.ports.connections import Disconnected, NewConnection
from services.router.handlers.ports.records import fields_of

c = t.agent_connections.c


class SqlConnections(SqlRepository):
    async def open(self, connection: NewConnection, now: datetime) -> None:
        await self.conn.execute(
            insert(t.agent_connections).values(**fields_of(connection), opened_at=now, last_seen_at=now)
        )

    async def close(self, tenant_id: str, connection_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.agent_connections)
            .where(c.tenant_id == tenant_id, c.id == connection_id, c.closed_at.is_(None))
            .values(closed_at=now)
        )

    async def refresh(self, replica: str, now: datetime) -> int:
        result = await self.conn.execute(
            update(t.agent_connections).where(c.replica == replica, c.closed_at.is_(None)).values(last_seen_at=now)
        )
        return int(result.rowcount or 0)

    async def live(self, tenant_id: str, agent_id: str, stale_before: datetime) -> bool:
        row = await self.conn.execute(
            select(c.id)
            .where(
                c.tenant_id == tenant_id,
                c.agent_id == agent_id,
                c.closed_at.is_(None),
                c.last_seen_at >= stale_before,
            )
            .limit(1)
        )
        return row.first() is not None

    async def disconnected(self, stale_before: datetime, deployment: str = "") -> list[Disconnected]:
        a = t.agents.c
        is_live = and_(c.closed_at.is_(None), c.last_seen_at >= stale_before)
        per_agent = (
            select(
                c.tenant_id,
                c.agent_id,
                func.max(case((is_live, 1), else_=0)).label("live"),
                func.max(func.coalesce(c.closed_at, c.last_seen_at)).label("lost_at"),
            )
            .where(c.deployment == deployment)
            .group_by(c.tenant_id, c.agent_id)
            .subquery()
        )
        rows = await self.conn.execute(
            select(
                per_agent.c.tenant_id,
                per_agent.c.agent_id,
                per_agent.c.lost_at,
                a.presence,
                a.presence_reason,
                func.coalesce(a.presence_changed_at, a.created_at).label("changed_at"),
            )
            .join(t.agents, and_(a.id == per_agent.c.agent_id, a.tenant_id == per_agent.c.tenant_id))
            .where(per_agent.c.live == 0, a.presence != Presence.OFFLINE.value)
        )
        return [
            Disconnected(r.tenant_id, r.agent_id, r.lost_at, Presence(r.presence), r.presence_reason, r.changed_at)
            for r in rows
        ]

    async def prune(self, before: datetime) -> None:
        await self.conn.execute(
            delete(t.agent_connections).where(
                or_(c.closed_at < before, and_(c.closed_at.is_(None), c.last_seen_at < before))
            )
        )
