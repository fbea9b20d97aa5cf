"""Follow-ups after a resolution, as two columns of the conversation (``follow_up_due_at``, ``followed_up_at``):
a reopened conversation drops its pending check-in in the same statement that reopens it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import select, update

from services.router.adapters.db import tables as t
from services.router.adapters.db.bulk import update_rows
from services.router.adapters.db.repository import SqlRepository
from services.router.adapters.db.statements import rows_in
from services.router.domain.model import ConversationStatus
from services.router.handlers.ports.follow_ups import DueFollowUp


class SqlFollowUps(SqlRepository):
    async def targets(self, tenant_id: str, conversation_ids: Iterable[str]) -> dict[str, tuple[str | None, str]]:
        c = t.conversations.c
        query = select(c.id, c.queue_id, c.channel).where(c.tenant_id == tenant_id)
        return {r.id: (r.queue_id, r.channel) for r in await rows_in(self.conn, query, c.id, conversation_ids)}

    async def schedule(self, tenant_id: str, due: Mapping[str, datetime]) -> None:
        rows = [
            dict(tenant_id=tenant_id, id=conversation_id, follow_up_due_at=at) for conversation_id, at in due.items()
        ]
        await update_rows(self.conn, t.conversations, rows, key=("tenant_id", "id"))

    async def tenants_due(self, now: datetime) -> list[str]:
        c = t.conversations.c
        # a range scan of the partial index on follow_up_due_at (only pending follow-ups are in it)
        rows = await self.conn.execute(select(c.tenant_id).where(c.follow_up_due_at <= now).distinct())
        return sorted(r.tenant_id for r in rows)

    async def claim_due(self, tenant_id: str, now: datetime, limit: int) -> list[DueFollowUp]:
        c, k = t.conversations.c, t.customers.c
        later = t.conversations.alias("later")
        wrote_again = (
            select(later.c.id)
            .where(
                later.c.tenant_id == c.tenant_id,
                later.c.customer_id == c.customer_id,
                later.c.opened_at > c.resolved_at,
            )
            .exists()
        )
        rows = await self.conn.execute(
            select(c.id, c.customer_id, c.channel, c.queue_id, c.resolved_at, k.language, wrote_again.label("again"))
            .join(t.customers, (k.tenant_id == c.tenant_id) & (k.id == c.customer_id))
            .where(
                c.follow_up_due_at <= now,
                c.tenant_id == tenant_id,
                c.status == ConversationStatus.RESOLVED.value,
            )
            .order_by(c.follow_up_due_at)
            .limit(limit)
            .with_for_update(of=t.conversations, skip_locked=True)
        )
        return [
            DueFollowUp(r.id, r.customer_id, r.channel, r.queue_id, r.language, r.resolved_at, bool(r.again))
            for r in rows
        ]

    async def finish(self, tenant_id: str, conversation_ids: Sequence[str], sent: Sequence[str], now: datetime) -> None:
        c = t.conversations.c
        if conversation_ids:
            await self.conn.execute(
                update(t.conversations)
                .where(c.tenant_id == tenant_id, c.id.in_(list(conversation_ids)))
                .values(follow_up_due_at=None)
            )
        if sent:
            await self.conn.execute(
                update(t.conversations).where(c.tenant_id == tenant_id, c.id.in_(list(sent))).values(followed_up_at=now)
            )
