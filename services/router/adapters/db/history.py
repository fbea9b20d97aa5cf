"""A tenant's recorded window as a simulation trace (docs/simulation.md, "The trace"): every conversation that
arrived in the window with its channel and what queue rules see of its customer, how long an agent worked on
it, how long an unanswered customer waited before leaving, and the agents' presence changes.

    switchboard history --tenant acme --from 2026-01-05T00:00:00Z --to 2026-01-12T00:00:00Z > week.jsonl
    switchboard simulate --desk desk.json --proposal proposal.json --trace week.jsonl

Where each figure comes from:

- arrival: when routing queued the conversation (``conversations.queued_at``, else ``opened_at``), as the
  live statistics count waits (adapters/views/stats.py);
- ``handle_s``: from the first accepted assignment (``assignments.accepted_at``) to the resolution. It is left
  out while a conversation is unresolved, and for one no agent took; ``simulate --handle`` fills those in;
- ``patience_s``: for a conversation no agent took, from its arrival to the caller hanging up
  (``abandoned_at``) or its resolution. A customer who was answered never shows their patience: left out;
- ``tier``, ``language``, ``tags``, ``attributes``, ``owner_agent_id``: the customer's values as stored now,
  not as they were at the arrival; ``previous_agent``: who last accepted one of the customer's conversations
  before this one, as sticky routing looks it up (adapters/db/customers.py ``last_agents``);
- presence: the changes routing recorded on each agent's feed (``agent_events`` of type ``presence``). An agent
  with changes in the window starts it as their last change before it left them; one with none at all follows
  the simulated desk's shifts or presence.

The queue is not part of a trace: the simulated desk's rules choose it, as they do for a proposal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from shared.command_line import documented_subcommand
from shared.settings import Settings
from shared.store import Database

Record = dict[str, Any]
MIN_S = 0.001  # a trace's durations are positive; a resolution in the acceptance's transaction lasted ~0 s


async def recorded_trace(conn: AsyncConnection, tenant_id: str, start: datetime, end: datetime) -> list[Record]:
    """The trace records of ``tenant_id``'s window [start, end), in time order."""
    arrivals = await _arrivals(conn, tenant_id, start, end)
    return sorted(
        [*arrivals, *await _presence(conn, tenant_id, start, end)],
        key=lambda r: (r["at"], r.get("type") != "presence"),  # at one instant, agents come online first
    )


async def read_history(settings: Settings, tenant_id: str, start: datetime, end: datetime) -> list[Record]:
    db = Database.from_settings(settings, pool_size=1)
    try:
        async with db.read() as conn:
            return await recorded_trace(conn, tenant_id, start, end)
    finally:
        await db.close()


def write_trace(records: list[Record], out: IO[str]) -> None:
    """JSON Lines, ``at`` as ISO 8601 UTC with microseconds."""
    for record in records:
        out.write(json.dumps({**record, "at": _iso(record["at"])}, separators=(", ", ": ")) + "\n")


async def _arrivals(conn: AsyncConnection, tenant_id: str, start: datetime, end: datetime) -> list[Record]:
    c, s, cu = t.conversations.c, t.assignments.c, t.customers.c
    arrived = func.coalesce(c.queued_at, c.opened_at)
    accepted = (
        select(s.conversation_id, func.min(s.accepted_at).label("accepted_at"))
        .where(s.tenant_id == tenant_id, s.assigned_at >= start, s.accepted_at.is_not(None))
        .group_by(s.conversation_id)
        .subquery()
    )
    rows = (
        await conn.execute(
            select(
                c.id,
                c.channel,
                c.customer_id,
                arrived.label("arrived_at"),
                c.resolved_at,
                c.abandoned_at,
                cu.tier,
                cu.language,
                cu.tags,
                cu.attributes,
                cu.owner_agent_id,
                accepted.c.accepted_at,
            )
            .join(t.customers, (cu.tenant_id == c.tenant_id) & (cu.id == c.customer_id))
            .outerjoin(accepted, accepted.c.conversation_id == c.id)  # of the tenant's assignments only
            .where(c.tenant_id == tenant_id, arrived >= start, arrived < end)
            .order_by(arrived, c.id)
        )
    ).all()
    helped = await _helped(conn, tenant_id, {r.customer_id for r in rows}, end)
    records = []
    for r in rows:
        at = _aware(r.arrived_at)
        record: Record = {"at": at, "id": r.id, "channel": r.channel}
        for key in ("tier", "language", "owner_agent_id"):
            if getattr(r, key) is not None:
                record[key] = getattr(r, key)
        if r.tags:
            record["tags"] = list(r.tags)
        if r.attributes:
            record["attributes"] = dict(r.attributes)
        previous = [
            agent for when, conversation, agent in helped.get(r.customer_id, ()) if when < at and conversation != r.id
        ]
        if previous:
            record["previous_agent"] = previous[-1]
        if r.accepted_at is not None and r.resolved_at is not None:
            record["handle_s"] = _seconds(_aware(r.accepted_at), _aware(r.resolved_at))
        elif r.accepted_at is None and (r.abandoned_at or r.resolved_at) is not None:
            record["patience_s"] = _seconds(at, _aware(r.abandoned_at or r.resolved_at))
        records.append(record)
    return records


async def _helped(
    conn: AsyncConnection, tenant_id: str, customers: set[str], end: datetime
) -> dict[str, list[tuple[datetime, str, str]]]:
    """Each customer's accepted assignments before ``end``, oldest first: (accepted at, conversation, agent)."""
    if not customers:
        return {}
    c, s = t.conversations.c, t.assignments.c
    rows = await conn.execute(
        select(c.customer_id, s.conversation_id, s.agent_id, s.accepted_at)
        .join(t.conversations, (c.tenant_id == s.tenant_id) & (c.id == s.conversation_id))
        .where(s.tenant_id == tenant_id, s.accepted_at.is_not(None), s.accepted_at < end, c.customer_id.in_(customers))
        .order_by(s.accepted_at, s.seq)
    )
    helped: dict[str, list[tuple[datetime, str, str]]] = {}
    for r in rows:
        helped.setdefault(r.customer_id, []).append((_aware(r.accepted_at), r.conversation_id, r.agent_id))
    return helped


async def _presence(conn: AsyncConnection, tenant_id: str, start: datetime, end: datetime) -> list[Record]:
    """The agents' presence changes in the window, after each one's presence as the window starts."""
    e = t.agent_events.c
    mine = (e.tenant_id == tenant_id, e.type == "presence")
    changes = (
        await conn.execute(select(e.agent_id, e.data, e.at).where(*mine, e.at >= start, e.at < end).order_by(e.seq))
    ).all()
    own = [r for r in changes if r.agent_id == r.data.get("agent")]  # not the supervisors' copy
    agents = {r.agent_id for r in own}
    last = select(func.max(e.seq)).where(*mine, e.at < start, e.agent_id.in_(agents)).group_by(e.agent_id)
    latest = (e.tenant_id == tenant_id, e.seq.in_(last))
    before = (await conn.execute(select(e.agent_id, e.data).where(*latest))).all() if agents else []
    records: list[Record] = [
        {"at": start, "type": "presence", "agent_id": r.agent_id, "presence": r.data["presence"]} for r in before
    ]
    records += [
        {"at": _aware(r.at), "type": "presence", "agent_id": r.agent_id, "presence": r.data["presence"]} for r in own
    ]
    return records


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _seconds(begin: datetime, end: datetime) -> float:
    return max(MIN_S, round((end - begin).total_seconds(), 6))


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"give the offset (e.g. Z or +02:00): {text!r}")
    return moment


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``switchboard history``: a tenant's recorded window as a trace for ``switchboard simulate --trace``."""
    summary = "a tenant's recorded window as a simulation trace (JSON Lines; docs/simulation.md)"
    p = documented_subcommand(subparsers, "history", summary, __doc__)
    p.add_argument("--tenant", required=True, help="the tenant's id")
    p.add_argument("--from", dest="start", type=_moment, required=True, help="the window's start, ISO 8601")
    p.add_argument("--to", dest="end", type=_moment, required=True, help="the window's end (excluded), ISO 8601")
    p.add_argument("--out", type=Path, help="the trace file (default: standard output)")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Reads the store at SWITCHBOARD_DATABASE_URL. Exit status 1 when the store cannot be read, 2 when the
    window is empty or reversed."""
    if args.end <= args.start:
        print("switchboard history: --to must be after --from", file=sys.stderr)
        return 2
    try:
        records = asyncio.run(read_history(settings, args.tenant, args.start, args.end))
    except (DBAPIError, OSError) as exc:  # unreachable, or not migrated: say so, without a traceback
        print(
            f"switchboard history: cannot read the store: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr
        )
        return 1
    if not records:
        print(f"switchboard history: nothing recorded for {args.tenant!r} in that window", file=sys.stderr)
        return 2
    if args.out is None:
        write_trace(records, sys.stdout)
    else:
        with args.out.open("w") as out:
            write_trace(records, out)
    arrivals = sum(1 for r in records if r.get("type") != "presence")
    print(f"{arrivals:,} conversations, {len(records) - arrivals:,} presence changes", file=sys.stderr)
    return 0
