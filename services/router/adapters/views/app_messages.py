"""What an in-app user's app shows of the desk's answers: the outbound messages on the in-app channel of the
customer the app knows as ``external_id``, after a cursor (``messages.seq``), oldest first."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.views.queries import of_identity
from shared.events import Channel, IdentityKind

# A message is listed once it is this old: on PostgreSQL sequence numbers are taken in one order and committed
# in another, so a message committed late may carry a lower number than one already listed; holding the newest
# back this long keeps a cursor from passing over it.
SETTLE = timedelta(seconds=2)


async def app_messages(
    conn: AsyncConnection, tenant_id: str, external_id: str, after: int, limit: int, now: datetime
) -> list[dict[str, Any]]:
    m = t.messages.c
    of_user = of_identity(
        select(m.seq, m.id, m.conversation_id, m.text, m.author, m.status, m.created_at),
        m.customer_id,
        tenant_id,
        IdentityKind.APP_USER,
        external_id,
    )
    rows = await conn.execute(
        of_user.where(
            m.tenant_id == tenant_id,
            m.channel == Channel.IN_APP.value,
            m.direction == "outbound",
            m.seq > after,
            m.created_at <= now - SETTLE,
        )
        .order_by(m.seq)
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]
