"""Routing commands in tests: a batch of the log as the owner's consumer gets it, and the outcomes stored."""

from __future__ import annotations

from sqlalchemy import select

from services.router.adapters.db import tables as t
from services.router.bootstrap import RouterRuntime
from shared.bus import Record
from shared.routing_commands import Command


def command_log(runtime: RouterRuntime, commands: list[Command]) -> list[Record]:
    """``commands`` as records of ``routing.commands``, in this order (one partition)."""
    return [
        Record(runtime.topics.routing_commands, 0, n, c.tenant.encode(), c.record(runtime.topics).value)
        for n, c in enumerate(commands)
    ]


async def command_statuses(runtime: RouterRuntime, commands: list[Command]) -> list[int | None]:
    """Each command's stored outcome status (None: none stored), in the order given."""
    async with runtime.db.read() as conn:
        c = t.routing_commands.c
        rows = dict((await conn.execute(select(c.id, c.status).where(c.id.in_([x.id for x in commands])))).all())
    return [rows.get(x.id) for x in commands]
