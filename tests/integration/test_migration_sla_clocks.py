"""Migration 0023: running SLA clocks move from ``sla_timers`` onto their conversation's row, on both dialects,
and what the KPIs and the tick read of them is unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from tests.support.databases import empty_database

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _clock(id_: str, conversation: str, kind: str, started: datetime, **more: Any) -> dict[str, Any]:
    return dict(
        tenant_id="tn", id=id_, conversation_id=conversation, kind=kind, queue_id="q", target_s=600.0,
        started_at=started, warn_at=started + timedelta(seconds=480), due_at=started + timedelta(seconds=600),
        paused_at=None, remaining_s=None, warned_at=None, breached_at=None, stopped_at=None, met=None,
    ) | more  # fmt: skip


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
async def test_running_clocks_move_onto_their_conversation_and_settled_ones_stay(
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("servers").database_url if dialect == "postgresql" else None
    async with empty_database(dialect, tmp_path, server) as db:
        await upgrade(db, "0022")
        async with db.transaction() as conn:
            await conn.execute(insert(t.tenants).values(id="tn", name="tn", created_at=T0))
            await conn.execute(insert(t.customers).values(id="cu", tenant_id="tn", created_at=T0))
            for conversation in ("cv1", "cv2"):
                await conn.execute(
                    insert(t.conversations).values(
                        id=conversation, tenant_id="tn", customer_id="cu", status="resolved", channel="chat",
                        opened_at=T0, last_message_at=T0,
                    )
                )  # fmt: skip
            later = T0 + timedelta(hours=1)
            await conn.execute(
                insert(t.sla_timers),
                [
                    # cv1: a settled first response, a running next response that warned, a paused resolution
                    _clock("a", "cv1", "first_response", T0, stopped_at=T0 + timedelta(seconds=30), met=True),
                    _clock("b", "cv1", "next_response", later, warned_at=later + timedelta(seconds=480)),
                    _clock("c", "cv1", "resolution", T0, paused_at=later, remaining_s=120.0),
                    # cv2: two running response clocks (the older cannot keep a slot) and nothing else
                    _clock("d", "cv2", "first_response", T0),
                    _clock("e", "cv2", "next_response", later),
                ],
            )
        await upgrade(db)
        async with db.read() as conn:
            c = t.conversations.c
            rows = {
                r.id: r
                for r in await conn.execute(
                    select(
                        c.id, c.response_kind, c.response_started_at, c.response_warned_at, c.response_queue_id,
                        c.resolution_kind, c.resolution_paused_at, c.resolution_remaining_s, c.resolution_due_at,
                    )
                )
            }  # fmt: skip
            settled = {r.id: r for r in await conn.execute(select(t.sla_timers))}
    one, two = rows["cv1"], rows["cv2"]
    assert (one.response_kind, one.response_started_at, one.response_warned_at, one.response_queue_id) == (
        "next_response",
        later,
        later + timedelta(seconds=480),
        "q",
    )
    assert (one.resolution_kind, one.resolution_paused_at, one.resolution_remaining_s, one.resolution_due_at) == (
        "resolution",
        later,
        120.0,
        T0 + timedelta(seconds=600),
    )
    assert (two.response_kind, two.response_started_at, two.resolution_kind) == ("next_response", later, None)
    # the settled clock kept as it was; the older of cv2's two running ones settled by the migration, missed
    # (its deadline long past); no running clock left in the history
    assert set(settled) == {"a", "d"}
    assert settled["a"].stopped_at == T0 + timedelta(seconds=30) and settled["a"].met is True
    assert settled["d"].stopped_at is not None and settled["d"].met is False
