"""What a routing transaction reads and writes (the ``Routing`` port): the tenant's lock and version, queues,
agents, assignments."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, bindparam, cast, func, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows, update_rows
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.statements import add_lifecycle
from services.router.adapters.db.tables.types import TS
from services.router.adapters.db.tenant_rows import TenantRows
from services.router.adapters.views import queries
from services.router.domain.model import AgentRow, Assignment, ConversationStatus, Presence, QueueRule, routing_attrs_of
from services.router.domain.routing.capacity import profile_from
from services.router.domain.routing.restore import StoredWork
from services.router.handlers.ports.records import AgentFacts, Lifecycle, fields_of
from services.router.handlers.ports.routing import Facts, Queued
from shared.ids import new_id

KEY = ("tenant_id", "id")  # a row of a tenant table, found by its key (tables/routing.py)
_HANDLE_TIMES = text(
    "SELECT w.id AS tenant_id, avg(extract(epoch FROM x.ended_at - x.assigned_at)) AS handle_s "
    "FROM unnest(CAST(:tenants AS VARCHAR[])) AS w(id) CROSS JOIN LATERAL ("
    "SELECT s.assigned_at, s.ended_at FROM assignments s WHERE s.tenant_id = w.id AND s.ended_at IS NOT NULL "
    "ORDER BY s.seq DESC LIMIT :last) AS x GROUP BY w.id"
)
_a, _c, _s = t.agents.c, t.conversations.c, t.assignments.c
_NOW = bindparam("now", type_=TS)
# a conversation's live (not ended) assignment: one at the most
_END_LIVE = Keyed(
    update(t.assignments).where(_s.ended_at.is_(None)).values(ended_at=_NOW), tuple_(_s.tenant_id, _s.conversation_id)
)
_ACCEPT_LIVE = Keyed(
    update(t.assignments).where(_s.ended_at.is_(None)).values(accepted_at=_NOW, offer_expires_at=None),
    tuple_(_s.tenant_id, _s.conversation_id),
)
_UNASSIGN = Keyed(update(t.conversations).values(agent_id=None, assigned_at=None), tuple_(_c.tenant_id, _c.id))
_ASSIGNED_AT = Keyed(
    update(t.conversations).values(assigned_at=_NOW).returning(_c.id, _c.tenant_id, _c.customer_id, _c.agent_id),
    tuple_(_c.tenant_id, _c.id),
)
_RECORDED = Keyed(
    select(
        _s.seq,
        _s.id,
        _s.tenant_id,
        _s.conversation_id,
        _s.agent_id,
        _s.queue_id,
        _s.channel,
        _s.assigned_at,
        _s.offer_expires_at,
        _c.customer_id,
    ).join(t.conversations, (_c.tenant_id == _s.tenant_id) & (_c.id == _s.conversation_id)),
    tuple_(_s.tenant_id, _s.id),
)
_AGENTS = Keyed(select(_a.tenant_id, _a.id), tuple_(_a.tenant_id, _a.id))


class SqlRouting(TenantRows):
    """The routing side of one transaction (the tenants' locks, versions and counters: ``TenantRows``)."""

    def __init__(self, conn: AsyncConnection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    async def store_facts(self, facts: Facts, queued: Queued | None = None, now: datetime | None = None) -> None:
        queues = {key: qid for key, qid in (queued or {}).items() if qid is not None}
        keep = frozenset({"queued_at"})
        rows = [(key, dict(fact) if fact is not None else None) for key, fact in facts.items()]
        # one UPDATE per shape of row (the arrays of one statement are columns of equal length)
        both = [dict(_keyed(k), routing=f, queue_id=queues[k], queued_at=now) for k, f in rows if k in queues]
        await update_rows(self.conn, t.conversations, both, key=KEY, keep=keep)
        only_fact = [dict(_keyed(k), routing=f) for k, f in rows if k not in queues]
        await update_rows(self.conn, t.conversations, only_fact, key=KEY)
        only_queue = [dict(_keyed(k), queue_id=qid, queued_at=now) for k, qid in queues.items() if k not in facts]
        await update_rows(self.conn, t.conversations, only_queue, key=KEY, keep=keep)

    async def customer_facts(self, tenant_id: str, customer_id: str) -> dict[str, dict[str, Any]]:
        c = t.conversations.c
        rows = await self.conn.execute(
            select(c.id, c.routing).where(
                c.tenant_id == tenant_id,
                c.customer_id == customer_id,
                c.status == ConversationStatus.OPEN.value,
                c.routing.is_not(None),
            )
        )
        return {r.id: dict(r.routing) for r in rows if r.routing}

    async def store_agents(self, agents: Mapping[str, Sequence[AgentFacts]]) -> None:
        # one statement for every tenant of the pass; an agent is found by its tenant too, never another's
        rows = [
            dict(
                tenant_id=tenant_id,
                id=f.agent_id,
                presence=f.presence.value,
                last_assigned_at=f.last_assigned_at,
                presence_reason=f.reason,
                presence_changed_at=f.changed_at,
            )
            for tenant_id, facts in sorted(agents.items())
            for f in facts
        ]
        kept = frozenset({"presence_reason", "presence_changed_at"})
        await update_rows(self.conn, t.agents, rows, key=KEY, or_stored=kept)

    async def tenants_with_due_routing(self, now: datetime) -> list[str]:
        """Tenants with offers past their expiry: after a replica died, nobody else's timer would end them.
        (Waiting work is routed by the next event of its tenant: a message, a presence change, a resolve.)"""
        s = t.assignments.c
        rows = await self.conn.execute(
            select(s.tenant_id).where(s.ended_at.is_(None), s.offer_expires_at <= now).distinct()
        )
        return sorted({r[0] for r in rows})

    async def queue_rules(self, tenant_id: str) -> list[QueueRule]:
        q = t.queues.c
        rows = await self.conn.execute(
            select(q.id, q.name, q.channels, q.is_default, q.routing)
            .where(q.tenant_id == tenant_id)
            .order_by(q.created_at, q.id)
        )
        return [QueueRule(r.id, r.name, frozenset(r.channels), r.is_default, dict(r.routing or {})) for r in rows]

    async def lock_agents(self, tenant_id: str) -> list[AgentRow]:
        """The tenant's agents, rows locked (PostgreSQL) until the routing transaction ends."""
        a, p = t.agents.c, t.routing_profiles.c
        rows = (
            await self.conn.execute(
                select(
                    a.id,
                    a.presence,
                    a.capacity,
                    a.queue_ids,
                    a.last_assigned_at,
                    a.skills,
                    a.languages,
                    p.id.label("profile_id"),
                    p.name.label("profile_name"),
                    p.config.label("profile_config"),
                )
                .outerjoin(t.routing_profiles, (p.tenant_id == a.tenant_id) & (p.id == a.profile_id))
                .where(a.tenant_id == tenant_id)
                .order_by(a.id)
                .with_for_update(of=t.agents)
            )
        ).all()
        return [
            AgentRow(
                id=r.id,
                presence=Presence(r.presence),
                capacity=dict(r.capacity),
                queue_ids=frozenset(r.queue_ids),
                last_assigned_at=r.last_assigned_at,
                skills=dict(r.skills or {}),
                languages=frozenset(r.languages or ()),
                profile=profile_from(r.profile_id, r.profile_name, r.profile_config) if r.profile_id else None,
            )
            for r in rows
        ]

    async def open_conversations_for_routing(self, tenant_id: str) -> list[StoredWork]:
        """Every open conversation with what routing needs: channel, queue, agent, since when, tier, language.

        A takeover reads every open conversation of the tenant, so this is on its clock (50,000 rows within
        2 s): rows are unpacked as tuples, and the customer's tags and attributes come as text, decoded only if
        the rebuild asks (work restored from its routing fact never does)."""
        c, cu, s = t.conversations.c, t.customers.c, t.assignments.c
        rows = await self.conn.execute(
            select(
                c.id,
                c.channel,
                c.queue_id,
                c.agent_id,
                func.coalesce(c.queued_at, c.opened_at).label("since"),
                cu.tier,
                cu.language,
                cast(cu.tags, Text),
                cast(cu.attributes, Text),
                cu.owner_agent_id,
                s.offer_expires_at,
                s.accepted_at,
                c.routing,
            )
            .join(t.customers, (cu.tenant_id == c.tenant_id) & (cu.id == c.customer_id))
            .outerjoin(t.assignments, (s.tenant_id == c.tenant_id) & (s.conversation_id == c.id) & s.ended_at.is_(None))
            .where(c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value)
        )
        # sorted here, not by the database: tens of thousands of wide rows spill its sort to disk
        works = [
            StoredWork(
                id_,
                channel,
                queue_id,
                _StoredAttrs(tier, language, tags, attributes, owner),
                since.timestamp(),
                fact,
                agent_id,
                offer_expires_at.timestamp() if offer_expires_at is not None and accepted_at is None else None,
            )
            for (
                id_,
                channel,
                queue_id,
                agent_id,
                since,
                tier,
                language,
                tags,
                attributes,
                owner,
                offer_expires_at,
                accepted_at,
                fact,
            ) in rows
        ]
        works.sort(key=lambda w: (w.enqueued_at, w.conversation_id))
        return works

    async def end_assignments(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """Take conversations back from their agents (agent offline, transfer): they wait in their queue again."""
        if not keys:
            return
        await _END_LIVE.run(self.conn, keys, now=now)
        await _UNASSIGN.run(self.conn, keys)

    async def record_assignments(
        self, assignments: Mapping[str, Sequence[Assignment]], written: Collection[str] = ()
    ) -> list[dict[str, Any]]:
        rows = [
            dict(
                fields_of(a),
                id=new_id(),
                tenant_id=tenant_id,
                accepted_at=None if a.offer_expires_at else a.assigned_at,  # an offer is not held until accepted
            )
            for tenant_id, made in sorted(assignments.items())
            for a in made
        ]
        if not rows:
            return []
        await insert_rows(self.conn, t.assignments, rows)
        await update_rows(
            self.conn,
            t.conversations,
            [
                dict(
                    tenant_id=r["tenant_id"],
                    id=r["conversation_id"],
                    agent_id=r["agent_id"],
                    assigned_at=r["assigned_at"],
                )
                for r in rows
                if r["conversation_id"] not in written
            ],
            key=KEY,
        )
        out = [dict(r._mapping) for r in await _RECORDED.run(self.conn, [(r["tenant_id"], r["id"]) for r in rows])]
        await add_lifecycle(
            self.conn,
            [
                Lifecycle(
                    r["tenant_id"],
                    r["customer_id"],
                    r["conversation_id"],
                    "offered" if r["offer_expires_at"] else "assigned",
                    r["assigned_at"],
                    {"agent_id": r["agent_id"], "queue_id": r["queue_id"]},
                )
                for r in out
            ],
        )
        return out

    async def accept_offers(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        """Offers accepted: the live assignment stays (same row), now held for good."""
        if not keys:
            return
        await _ACCEPT_LIVE.run(self.conn, keys, now=now)
        rows = await _ASSIGNED_AT.run(self.conn, keys, now=now)  # with what the timeline entry needs
        await add_lifecycle(
            self.conn,
            [Lifecycle(r.tenant_id, r.customer_id, r.id, "assigned", now, {"agent_id": r.agent_id}) for r in rows],
        )

    async def agent_exists(self, tenant_id: str, agent_id: str) -> bool:
        return await queries.agent_exists(self.conn, tenant_id, agent_id)

    async def agents_known(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(r.tenant_id, r.id) for r in await _AGENTS.run(self.conn, keys)}

    async def average_handle_s(self, tenant_ids: Iterable[str], last: int = 200) -> dict[str, float]:
        wanted = sorted(set(tenant_ids))
        if not wanted:
            return {}
        if self.dialect == "postgresql":  # each tenant's latest, in one statement
            rows = await self.conn.execute(_HANDLE_TIMES, {"tenants": wanted, "last": last})
            return {r.tenant_id: float(r.handle_s) for r in rows if r.handle_s is not None}
        out: dict[str, float] = {}
        for tenant_id in wanted:  # in process: no round trip to save
            handle_s = await queries.average_handle_s(self.conn, tenant_id, last)
            if handle_s is not None:
                out[tenant_id] = handle_s
        return out


def _keyed(key: tuple[str, str]) -> dict[str, Any]:
    """A row's ``KEY`` columns, from its (tenant, id)."""
    return {"tenant_id": key[0], "id": key[1]}


class _StoredAttrs(Mapping[str, Any]):
    """A customer's routing attributes (``statements.routing_attrs_of``) from the stored row, built when first read."""

    __slots__ = ("_attrs", "_row")

    def __init__(self, tier: str, language: str | None, tags: str | None, attributes: str | None, owner: Any):
        self._row: tuple[Any, ...] | None = (tier, language, tags, attributes, owner)
        self._attrs: dict[str, Any] = {}

    def _built(self) -> dict[str, Any]:
        if self._row is not None:
            tier, language, tags, attributes, owner = self._row
            self._attrs = routing_attrs_of(
                tier,
                language,
                orjson.loads(tags) if tags else None,
                orjson.loads(attributes) if attributes else None,
                owner,
            )
            self._row = None
        return self._attrs

    def __getitem__(self, key: str) -> Any:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())
