"""Queues and agents as supervisors manage them (the ``Configuration`` port): the routing configuration,
tenant-scoped. The rules (what may be deleted, which queues must exist) are ``handlers/configuration.py``'s."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Executable, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from services.router.adapters.db import tables as t
from services.router.adapters.db.repository import SqlRepository
from services.router.domain.errors import InvalidCommand
from services.router.domain.model import ConversationStatus
from shared.ids import new_id

QUEUE_FIELDS = ("id", "name", "channels", "is_default", "routing", "created_at")
AGENT_FIELDS = (
    "id",
    "name",
    "presence",
    "presence_reason",
    "presence_changed_at",
    "capacity",
    "profile_id",
    "queue_ids",
    "skills",
    "languages",
    "voice_endpoint",
    "last_assigned_at",
    "created_at",
)

PROFILE_FIELDS = ("id", "name", "config", "created_at")

q = t.queues.c
a = t.agents.c
rp = t.routing_profiles.c


class SqlConfiguration(SqlRepository):
    """Queues and agents in one transaction."""

    async def _one(self, table: Table, fields: tuple[str, ...], tenant_id: str, id_: str) -> dict[str, Any] | None:
        """The tenant's row of that id, as these fields."""
        c = table.c
        row = (
            await self.conn.execute(select(*(c[f] for f in fields)).where(c.tenant_id == tenant_id, c.id == id_))
        ).first()
        return dict(row._mapping) if row is not None else None

    async def _named(self, write: Executable, taken: str) -> None:
        """Insert or update a row whose name is unique in the tenant; a name in use breaks the unique index,
        which is refused as ``taken`` says."""
        try:
            await self.conn.execute(write)
        except IntegrityError as exc:
            raise InvalidCommand(taken) from exc

    async def queue(self, tenant_id: str, queue_id: str) -> dict[str, Any] | None:
        return await self._one(t.queues, QUEUE_FIELDS, tenant_id, queue_id)

    async def unknown_queues(self, tenant_id: str, queue_ids: list[str]) -> list[str]:
        known = {
            r.id for r in await self.conn.execute(select(q.id).where(q.tenant_id == tenant_id, q.id.in_(queue_ids)))
        }
        return sorted(set(queue_ids) - known)

    async def clear_default_queue(self, tenant_id: str) -> None:
        await self.conn.execute(update(t.queues).where(q.tenant_id == tenant_id).values(is_default=False))

    async def add_queue(self, tenant_id: str, values: dict[str, Any], now: datetime) -> str:
        queue_id = new_id()
        await self._named(
            insert(t.queues).values(id=queue_id, tenant_id=tenant_id, created_at=now, **values),
            f"a queue named {values['name']!r} exists",
        )
        return queue_id

    async def update_queue(self, tenant_id: str, queue_id: str, values: dict[str, Any]) -> None:
        await self._named(
            update(t.queues).where(q.tenant_id == tenant_id, q.id == queue_id).values(**values),
            "another queue has that name",
        )

    async def open_in_queue(self, tenant_id: str, queue_id: str) -> int:
        c = t.conversations.c
        count = await self.conn.execute(
            select(func.count()).where(
                c.tenant_id == tenant_id, c.queue_id == queue_id, c.status == ConversationStatus.OPEN.value
            )
        )
        return int(count.scalar_one())

    async def remove_queue(self, tenant_id: str, queue_id: str) -> None:
        await self.conn.execute(delete(t.queues).where(q.tenant_id == tenant_id, q.id == queue_id))

    async def waiting(self, tenant_id: str, queue_id: str, now: datetime, limit: int) -> list[dict[str, Any]]:
        """The queue as a supervisor sees it: who waits, in the order they will be served (the routing facts'
        virtual time: arrival less tier, urgency and escalation boosts), and for how long."""
        c = t.conversations.c
        rows = (
            await self.conn.execute(
                select(c.id, c.customer_id, c.channel, c.queued_at, c.opened_at, c.routing).where(
                    c.tenant_id == tenant_id,
                    c.queue_id == queue_id,
                    c.status == ConversationStatus.OPEN.value,
                    c.agent_id.is_(None),
                )
            )
        ).all()

        def served(r: Any) -> tuple[float, int, str]:
            fact = r.routing or {}
            since = (r.queued_at or r.opened_at).timestamp()
            return (float(fact.get("virtual_time", since)), int(fact.get("seq", 1 << 62)), r.id)

        out = []
        for position, r in enumerate(sorted(rows, key=served)[:limit], start=1):
            since = r.queued_at or r.opened_at
            fact = r.routing or {}
            boost = float(fact["enqueued_at"]) - float(fact["virtual_time"]) if fact else 0.0
            out.append(
                {
                    "position": position,
                    "conversation_id": r.id,
                    "customer_id": r.customer_id,
                    "channel": r.channel,
                    "queued_at": since,
                    "waiting_s": round(max(0.0, (now - since).total_seconds()), 1),
                    "priority_boost_s": round(boost, 3),
                }
            )
        return out

    async def agent(self, tenant_id: str, agent_id: str) -> dict[str, Any] | None:
        return await self._one(t.agents, AGENT_FIELDS, tenant_id, agent_id)

    async def add_agent(self, tenant_id: str, values: dict[str, Any], now: datetime) -> str:
        agent_id = new_id()
        await self.conn.execute(insert(t.agents).values(id=agent_id, tenant_id=tenant_id, created_at=now, **values))
        return agent_id

    async def update_agent(self, tenant_id: str, agent_id: str, values: dict[str, Any]) -> None:
        await self.conn.execute(update(t.agents).where(a.tenant_id == tenant_id, a.id == agent_id).values(**values))

    async def agent_assignments(self, tenant_id: str, agent_id: str) -> tuple[int, int]:
        s = t.assignments.c
        mine = s.tenant_id == tenant_id, s.agent_id == agent_id
        live = await self.conn.execute(select(func.count()).where(*mine, s.ended_at.is_(None)))
        live_count = int(live.scalar_one())
        every = await self.conn.execute(select(func.count()).where(*mine))
        return live_count, int(every.scalar_one())

    async def retire_agent(self, tenant_id: str, agent_id: str) -> None:
        await self.conn.execute(
            update(t.agents).where(a.tenant_id == tenant_id, a.id == agent_id).values(presence="offline", queue_ids=[])
        )

    async def remove_agent(self, tenant_id: str, agent_id: str) -> None:
        await self.conn.execute(delete(t.agents).where(a.tenant_id == tenant_id, a.id == agent_id))

    async def profile(self, tenant_id: str, profile_id: str) -> dict[str, Any] | None:
        return await self._one(t.routing_profiles, PROFILE_FIELDS, tenant_id, profile_id)

    async def profiles(self, tenant_id: str) -> list[dict[str, Any]]:
        rows = await self.conn.execute(
            select(*(rp[f] for f in PROFILE_FIELDS)).where(rp.tenant_id == tenant_id).order_by(rp.name)
        )
        return [dict(r._mapping) for r in rows]

    async def add_profile(self, tenant_id: str, name: str, config: dict[str, Any], now: datetime) -> str:
        profile_id = new_id()
        await self._named(
            insert(t.routing_profiles).values(
                id=profile_id, tenant_id=tenant_id, name=name, config=config, created_at=now
            ),
            f"a profile named {name!r} exists",
        )
        return profile_id

    async def update_profile(self, tenant_id: str, profile_id: str, values: dict[str, Any]) -> None:
        await self._named(
            update(t.routing_profiles).where(rp.tenant_id == tenant_id, rp.id == profile_id).values(**values),
            "another profile has that name",
        )

    async def agent_loads(self, tenant_id: str, agent_id: str) -> dict[str, int]:
        s = t.assignments.c
        rows = await self.conn.execute(
            select(s.channel, func.count())
            .where(s.tenant_id == tenant_id, s.agent_id == agent_id, s.ended_at.is_(None))
            .group_by(s.channel)
        )
        return {channel: int(n) for channel, n in rows}
