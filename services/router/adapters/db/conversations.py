"""Conversations, messages and the timeline (the ``Conversations`` port)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows, update_rows
from services.router.adapters.db.keyed import Keyed
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.sla_timers import slot_row, slot_values
from services.router.adapters.db.statements import add_lifecycle, key_in, resolution
from services.router.adapters.db.tables.sla_slots import SLOTS
from services.router.adapters.db.tables.types import TS
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import ConversationStatus
from services.router.handlers.ports.conversations import (
    ConversationOpenedMeanwhile,
    ConversationPlan,
    Note,
    WantedConversation,
)
from services.router.handlers.ports.records import (
    Lifecycle,
    NewConversation,
    NewMessage,
    NewSlaTimer,
    OpenConversation,
    Placement,
    fields_of,
)
from shared.ids import new_id

_c, _m = t.conversations.c, t.messages.c
_KNOWN_EVENTS = Keyed(select(_m.tenant_id, _m.event_id), tuple_(_m.tenant_id, _m.event_id))
_OPEN_OF_CUSTOMERS = Keyed(
    select(_c.id, _c.tenant_id, _c.customer_id, _c.channel, _c.queue_id, _c.agent_id, _c.awaiting).where(
        _c.status == ConversationStatus.OPEN.value
    ),
    tuple_(_c.tenant_id, _c.customer_id),
)
_RESOLVED_OF_CUSTOMERS = Keyed(
    select(_c.customer_id, _c.id, _c.resolved_at, _c.followed_up_at)
    .where(_c.status == ConversationStatus.RESOLVED.value)
    .order_by(_c.resolved_at.desc()),
    tuple_(_c.tenant_id, _c.customer_id),
)
_ESCALATE = Keyed(
    update(t.conversations).values(escalated_at=func.coalesce(_c.escalated_at, bindparam("now", type_=TS))),
    tuple_(_c.tenant_id, _c.id),
)
_CUSTOMERS_OF = Keyed(select(_c.id, _c.tenant_id, _c.customer_id), tuple_(_c.tenant_id, _c.id))
_TO_RESOLVE = Keyed(
    select(_c.tenant_id, _c.id, _c.customer_id, _c.status, _c.agent_id).with_for_update(), tuple_(_c.tenant_id, _c.id)
)


class SqlConversations(SqlRepository):
    """Conversations, messages and timeline entries in one transaction."""

    async def known_event_ids(self, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in await _KNOWN_EVENTS.run(self.conn, keys)}

    async def open_conversations(self, keys: Iterable[tuple[str, str]]) -> dict[str, OpenConversation]:
        rows = await _OPEN_OF_CUSTOMERS.run(self.conn, keys)
        return {r.customer_id: OpenConversation(*r) for r in rows}

    async def plan_conversations(
        self,
        wanted: Mapping[str, WantedConversation],
        now: datetime,
        reopen_within: timedelta | None = None,
        created: Collection[str] = (),
    ) -> ConversationPlan:
        existing = await self.open_conversations((w.tenant_id, cid) for cid, w in wanted.items() if cid not in created)
        missing = {cid: v for cid, v in wanted.items() if cid not in existing}
        if not missing:
            return ConversationPlan(existing, [], [])
        c = t.conversations.c
        latest: dict[str, tuple[str, datetime | None]] = {}
        stored = [(w.tenant_id, cid) for cid, w in missing.items() if cid not in created]
        for r in await _RESOLVED_OF_CUSTOMERS.run(self.conn, stored):
            # a follow-up asked the customer to reply if anything is left: the window counts from it too
            last = max(filter(None, (r.resolved_at, r.followed_up_at)), default=None)
            latest.setdefault(r.customer_id, (r.id, last))
        reopen = {
            cid: conv_id
            for cid, (conv_id, resolved_at) in latest.items()
            if reopen_within is not None and resolved_at is not None and now - resolved_at <= reopen_within
        }
        events: list[Lifecycle] = []
        if reopen:
            await self.conn.execute(
                update(t.conversations)
                .where(
                    key_in(
                        self.conn, tuple_(c.tenant_id, c.id), [(missing[cid].tenant_id, v) for cid, v in reopen.items()]
                    )
                )
                .values(
                    status=ConversationStatus.OPEN.value,
                    reopened_at=now,
                    agent_id=None,
                    queue_id=None,
                    queued_at=None,
                    routing=None,
                    follow_up_due_at=None,  # the customer is back before the check-in: it is not needed
                )
            )
            events += [Lifecycle(missing[cid].tenant_id, cid, conv, "reopened", now) for cid, conv in reopen.items()]
            existing.update(await self.open_conversations((missing[cid].tenant_id, cid) for cid in reopen))
        new = [
            NewConversation(
                id=new_id(),
                tenant_id=w.tenant_id,
                customer_id=cid,
                channel=w.channel,
                opened_at=now,
                last_message_at=w.received_at or now,
                awaiting="agent" if w.received_at is not None else None,
                previous_conversation_id=latest.get(cid, (None, None))[0],
            )
            for cid, w in missing.items()
            if cid not in reopen
        ]
        for n in new:
            existing[n.customer_id] = OpenConversation(
                n.id, n.tenant_id, n.customer_id, n.channel, None, None, n.awaiting
            )
        return ConversationPlan(existing, new, events)

    async def insert_conversations(
        self, new: Sequence[NewConversation], placed: Mapping[str, Placement], clocks: Sequence[NewSlaTimer] = ()
    ) -> None:
        slots: dict[str, dict[str, Any]] = {n.id: {} for n in new}
        for clock in clocks:
            if clock.conversation_id in slots:
                slots[clock.conversation_id].update(slot_values(clock))
        empty = _EMPTY_SLOTS  # every row the same columns
        rows: list[dict[str, Any]] = []
        for n in new:
            p = placed.get(n.id)
            rows.append(
                dict(
                    fields_of(n),
                    **(empty | slots[n.id]),
                    opened_channel=n.channel,  # it is its own "opened" timeline entry (tables/context.py)
                    status=ConversationStatus.OPEN.value,
                    routing=p.routing if p else None,
                    queue_id=p.queue_id if p else None,
                    queued_at=p.at if p and p.queue_id else None,
                    agent_id=p.agent_id if p else None,
                    assigned_at=p.at if p and p.agent_id else None,
                )
            )
        try:
            await insert_rows(self.conn, t.conversations, rows)
        except IntegrityError as exc:
            raise ConversationOpenedMeanwhile(str(exc.orig)[:200]) from exc

    async def touch_conversations(self, last: Mapping[tuple[str, str], tuple[str, datetime]]) -> None:
        await update_rows(
            self.conn,
            t.conversations,
            [dict(tenant_id=tn, id=cid, channel=ch, last_message_at=at) for (tn, cid), (ch, at) in last.items()],
            key=("tenant_id", "id"),
            awaiting="agent",
            pending_since=None,
        )

    async def insert_messages(self, rows: Sequence[NewMessage], now: datetime) -> None:
        """The messages, each its own timeline entry (tables/context.py: one numbering for both)."""
        if rows:
            await insert_rows(
                self.conn, t.messages, [dict(created_at=now, **fields_of(m)) for m in rows], ignore_conflicts=True
            )

    async def add_lifecycle(self, rows: Sequence[Lifecycle]) -> None:
        await add_lifecycle(self.conn, rows)

    async def mark_escalated(self, keys: Sequence[tuple[str, str]], now: datetime) -> None:
        await _ESCALATE.run(self.conn, keys, now=now)

    async def add_conversation_notes(
        self, notes: Mapping[str, Sequence[Note]], now: datetime, owners: Mapping[tuple[str, str], str] | None = None
    ) -> None:
        found = dict(owners or {})
        wanted = {(tenant_id, cid) for tenant_id, ns in notes.items() for cid, _, _ in ns} - found.keys()
        for r in await _CUSTOMERS_OF.run(self.conn, wanted):
            found[(r.tenant_id, r.id)] = r.customer_id
        await add_lifecycle(
            self.conn,
            [
                Lifecycle(tenant_id, found[(tenant_id, cid)], cid, kind, now, orjson.loads(orjson.dumps(data)))
                for tenant_id, tenant_notes in sorted(notes.items())
                for cid, kind, data in tenant_notes
                if (tenant_id, cid) in found  # another tenant's conversation is not this tenant's to note
            ],
        )

    async def resolve_conversations(
        self, notes: Mapping[tuple[str, str], str | None], now: datetime
    ) -> dict[tuple[str, str], str | None]:
        if not notes:
            return {}
        rows = {(r.tenant_id, r.id): r for r in await _TO_RESOLVE.run(self.conn, notes)}
        for key in notes:
            row = rows.get(key)
            if row is None:
                raise NotFound(f"no conversation {key[1]}")
            if row.status != ConversationStatus.OPEN.value:
                raise InvalidCommand(f"conversation is {row.status}, not open")
        # the one write of each row: resolved, its routing fact and its clocks' slots emptied (every clock stops;
        # the caller settles those it read, ``SlaTimers.settle(..., emptied=True)``). A second UPDATE of a row
        # in one transaction is a second row version, and has PostgreSQL check its foreign keys again.
        await update_rows(
            self.conn,
            t.conversations,
            [dict(tenant_id=tenant_id, id=cid, resolution_note=note) for (tenant_id, cid), note in notes.items()],
            key=("tenant_id", "id"),
            **resolution(now),
            **_EMPTY_SLOTS,
        )
        live = [dict(tenant_id=tenant_id, conversation_id=cid) for tenant_id, cid in notes]
        found = ("tenant_id", "conversation_id")
        await update_rows(self.conn, t.assignments, live, key=found, unless_set="ended_at", ended_at=now)
        await add_lifecycle(
            self.conn, [Lifecycle(key[0], rows[key].customer_id, key[1], "resolved", now) for key in notes]
        )
        return {key: str(rows[key].agent_id) if rows[key].agent_id is not None else None for key in notes}

    async def conversation_is_open(self, tenant_id: str, conversation_id: str) -> bool:
        c = t.conversations.c
        row = await self.conn.execute(
            select(c.id).where(
                c.tenant_id == tenant_id, c.id == conversation_id, c.status == ConversationStatus.OPEN.value
            )
        )
        return row.first() is not None


_EMPTY_SLOTS = {k: v for name in SLOTS for k, v in slot_row(name).items()}
