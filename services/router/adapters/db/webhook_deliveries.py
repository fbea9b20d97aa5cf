"""The ``webhook_deliveries`` table (the ``WebhookDeliveries`` port): outgoing webhooks queued per receiver,
retried until taken or given up, then listed for a supervisor to redeliver."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, exists, or_, select, tuple_, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import insert_rows
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import key_in, rows_in
from services.router.handlers.ports.webhook_deliveries import Attempted, DueDelivery, NewDelivery, State

w = t.webhook_deliveries.c
_earlier = t.webhook_deliveries.alias("earlier")


class SqlWebhookDeliveries(SqlRepository):
    async def add(self, deployment: str, rows: Sequence[NewDelivery], now: datetime) -> int:
        if not rows:
            return 0
        events = {(r.tenant_id, r.event_id) for r in rows}
        queued = {
            (x.tenant_id, x.url, x.event_id)
            for x in await rows_in(
                self.conn,
                select(w.tenant_id, w.url, w.event_id).where(w.deployment == deployment),
                tuple_(w.tenant_id, w.event_id),
                events,
            )
        }
        fresh = [r for r in rows if (r.tenant_id, r.url, r.event_id) not in queued]
        # the unique (deployment, url, event_id) settles a race with another replica consuming the same record
        # after a rebalance: the second insert is skipped
        await insert_rows(
            self.conn,
            t.webhook_deliveries,
            [
                dict(
                    deployment=deployment,
                    state="pending",
                    attempts=0,
                    created_at=now,
                    window_from=now,
                    next_attempt_at=now,
                    redeliveries=0,
                    **{k: getattr(r, k) for k in r.__slots__},
                )
                for r in fresh
            ],
            ignore_conflicts=True,
        )
        return len(fresh)

    async def claim_due(self, deployment: str, now: datetime, lease_until: datetime, limit: int) -> list[DueDelivery]:
        e = _earlier.c
        waits_its_turn = exists().where(
            e.deployment == w.deployment,
            e.url == w.url,
            e.ordering_key == w.ordering_key,
            e.state == "pending",
            e.seq < w.seq,
        )
        rows = (
            await self.conn.execute(
                select(w.id, w.tenant_id, w.url, w.event_id, w.body, w.attempts, w.window_from)
                .where(
                    w.deployment == deployment,
                    w.state == "pending",
                    w.next_attempt_at <= now,
                    or_(w.lease_until.is_(None), w.lease_until <= now),
                    ~waits_its_turn,
                )
                .order_by(w.seq)
                .limit(limit)
                .with_for_update(of=t.webhook_deliveries, skip_locked=True)
            )
        ).all()
        if rows:
            leased = key_in(self.conn, tuple_(w.tenant_id, w.id), [(r.tenant_id, r.id) for r in rows])
            await self.conn.execute(update(t.webhook_deliveries).where(leased).values(lease_until=lease_until))
        return [DueDelivery(**r._mapping) for r in rows]

    async def record(self, attempts: Sequence[Attempted], now: datetime) -> None:
        if not attempts:
            return
        await self.conn.execute(
            update(t.webhook_deliveries)
            .where(w.tenant_id == bindparam("b_tenant_id"), w.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                attempts=w.attempts + 1,
                next_attempt_at=bindparam("b_next", type_=t.TS),
                lease_until=None,
                last_attempt_at=now,
                last_status=bindparam("b_status"),
                last_error=bindparam("b_error"),
                finished_at=bindparam("b_finished", type_=t.TS),
            ),
            [
                {
                    "b_tenant_id": a.tenant_id,
                    "b_id": a.id,
                    "b_state": a.state,
                    "b_next": a.next_attempt_at,
                    "b_status": a.status,
                    "b_error": a.error,
                    "b_finished": None if a.state == "pending" else now,
                }
                for a in attempts
            ],
        )

    async def one(self, tenant_id: str, delivery_id: str) -> dict[str, Any] | None:
        row = (
            await self.conn.execute(select(t.webhook_deliveries).where(w.tenant_id == tenant_id, w.id == delivery_id))
        ).first()
        return dict(row._mapping) if row is not None else None

    async def page(self, tenant_id: str, state: State, limit: int, before: datetime | None) -> list[dict[str, Any]]:
        query = select(t.webhook_deliveries).where(w.tenant_id == tenant_id, w.state == state)
        if before is not None:
            query = query.where(w.created_at < before)
        rows = await self.conn.execute(query.order_by(w.created_at.desc(), w.seq.desc()).limit(limit))
        return [dict(r._mapping) for r in rows]

    async def redeliver(self, tenant_id: str, delivery_id: str, now: datetime) -> None:
        await self.conn.execute(
            update(t.webhook_deliveries)
            .where(w.tenant_id == tenant_id, w.id == delivery_id)
            .values(
                state="pending",
                attempts=0,
                window_from=now,
                next_attempt_at=now,
                lease_until=None,
                finished_at=None,
                redeliveries=w.redeliveries + 1,
            )
        )

    async def forget_finished_before(self, cutoff: datetime) -> int:
        result = await self.conn.execute(delete(t.webhook_deliveries).where(w.finished_at < cutoff))
        return int(result.rowcount or 0)
