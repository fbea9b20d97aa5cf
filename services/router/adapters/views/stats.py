"""Live desk statistics and KPIs over a period, computed in SQL (on PostgreSQL with percentile_cont; SQLite,
the embedded store, has no percentile aggregate, so there the durations of each group are read and the
percentiles taken in Python).

KPI definitions — over the conversations *opened* in [from, to), merged ones excluded:
- first_response_s: first agent reply - opened (median, p90), conversations answered;
- resolution_s: resolved - opened (median, p90), resolved conversations;
- sla_attainment_pct: SLA clocks finished on time / clocks finished (stopped or breached) x 100;
- escalation_rate: escalated (SLA action, overflow, declines) / conversations;
- reopen_rate: reopened / conversations;
- fcr_rate (first-contact resolution): resolved, never reopened, one agent reply / resolved;
- csat_avg: mean CSAT score answered; csat_response_rate: CSAT surveys answered / sent;
- nps: % promoters (9-10) - % detractors (0-6) among NPS answers; ces_avg: mean CES answer (1-7, lower is easier);
- abandon_rate: calls the caller hung up on while waiting / conversations with a call; time_to_abandon_s:
  queued -> hang-up (median, p90).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.tables.sla_slots import SLOTS, field, live
from services.router.adapters.views import queries
from services.router.domain.model import ConversationStatus, Presence

GROUPS = ("none", "queue", "channel", "agent")


def _seconds(dialect: str, end: Any, start: Any) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _pct(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks: what PostgreSQL's percentile_cont computes."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


async def kpis(
    conn: AsyncConnection, tenant_id: str, start: datetime, end: datetime, group_by: str = "none"
) -> list[dict[str, Any]]:
    dialect = conn.dialect.name
    c, m, s, v = t.conversations.c, t.messages.c, t.sla_timers.c, t.surveys.c
    key = {"none": literal("all"), "queue": c.queue_id, "channel": c.channel, "agent": c.agent_id}[group_by]
    # Per-conversation figures as correlated subqueries: each is an index lookup by conversation id, so the
    # plan stays linear in the period's conversations whatever the planner's statistics say (right after a
    # bulk load it has none, and joins of grouped subqueries degrade to nested loops).
    replies = (
        select(func.count())
        .where(
            m.tenant_id == c.tenant_id, m.conversation_id == c.id, m.direction == "outbound", m.sender_kind == "agent"
        )
        .scalar_subquery()
    )
    # each figure found by the conversation's key: its tenant and id
    timers_of = and_(s.tenant_id == c.tenant_id, s.conversation_id == c.id)
    surveys_of = and_(v.tenant_id == c.tenant_id, v.conversation_id == c.id)
    # a promise counts once it is settled (sla_timers: stopped), or broken while it still runs (on the row)
    sla_met = select(func.count()).where(timers_of, s.breached_at.is_(None)).scalar_subquery()
    broken_running = sum(
        (
            case((and_(live(t.conversations, n), field(t.conversations, n, "breached_at").is_not(None)), 1), else_=0)
            for n in SLOTS
        ),
        start=literal(0),
    )
    sla_total = select(func.count()).where(timers_of).scalar_subquery() + broken_running
    csat_sent = select(func.count()).where(surveys_of, v.kind == "csat").scalar_subquery()
    csat_answered = (
        select(func.count()).where(surveys_of, v.kind == "csat", v.answered_at.is_not(None))
    ).scalar_subquery()
    csat_sum = (select(func.coalesce(func.sum(v.score), 0)).where(surveys_of, v.kind == "csat")).scalar_subquery()
    answered = and_(surveys_of, v.answered_at.is_not(None))
    nps_answered = select(func.count()).where(answered, v.kind == "nps").scalar_subquery()
    nps_promoters = select(func.count()).where(answered, v.kind == "nps", v.score >= 9).scalar_subquery()
    nps_detractors = select(func.count()).where(answered, v.kind == "nps", v.score <= 6).scalar_subquery()
    ces_answered = select(func.count()).where(answered, v.kind == "ces").scalar_subquery()
    ces_sum = select(func.coalesce(func.sum(v.score), 0)).where(answered, v.kind == "ces").scalar_subquery()
    had_call = (
        select(func.count())
        .where(
            m.tenant_id == c.tenant_id,
            m.conversation_id == c.id,
            m.channel == "voice",
            m.direction == "inbound",
            m.sender_kind == "phone",
            m.thread_ref.is_(None),
        )
        .scalar_subquery()
    )
    resolved = c.resolved_at.is_not(None) & (c.status == ConversationStatus.RESOLVED.value)
    per = (
        select(
            key.label("key"),
            _seconds(dialect, c.first_response_at, c.opened_at).label("fr"),
            case((resolved, _seconds(dialect, c.resolved_at, c.opened_at)), else_=None).label("res"),
            case((c.escalated_at.is_not(None), 1), else_=0).label("escalated"),
            case((c.abandoned_at.is_not(None), 1), else_=0).label("abandoned"),
            case((had_call > 0, 1), else_=0).label("calls"),
            _seconds(dialect, c.abandoned_at, func.coalesce(c.queued_at, c.opened_at)).label("tta"),
            case((c.reopened_at.is_not(None), 1), else_=0).label("reopened"),
            case((resolved, 1), else_=0).label("resolved"),
            case((and_(resolved, c.reopened_at.is_(None), replies == 1), 1), else_=0).label("fcr"),
            sla_met.label("sla_met"),
            sla_total.label("sla_total"),
            csat_sent.label("csat_sent"),
            csat_answered.label("csat_answered"),
            csat_sum.label("csat_sum"),
            nps_answered.label("nps_answered"),
            nps_promoters.label("nps_promoters"),
            nps_detractors.label("nps_detractors"),
            ces_answered.label("ces_answered"),
            ces_sum.label("ces_sum"),
        )
        .select_from(t.conversations)
        .where(
            c.tenant_id == tenant_id,
            c.opened_at >= start,
            c.opened_at < end,
            c.status != ConversationStatus.MERGED.value,
        )
        .subquery()
    )
    p = per.c
    sums = [
        func.count().label("conversations"),
        func.sum(p.escalated).label("escalated"),
        func.sum(p.abandoned).label("abandoned"),
        func.sum(p.calls).label("calls"),
        func.sum(p.reopened).label("reopened"),
        func.sum(p.resolved).label("resolved"),
        func.sum(p.fcr).label("fcr"),
        func.sum(p.sla_met).label("sla_met"),
        func.sum(p.sla_total).label("sla_total"),
        func.sum(p.csat_sent).label("csat_sent"),
        func.sum(p.csat_answered).label("csat_answered"),
        func.sum(p.csat_sum).label("csat_sum"),
        *(
            func.sum(col).label(name)
            for name, col in (
                ("nps_answered", p.nps_answered),
                ("nps_promoters", p.nps_promoters),
                ("nps_detractors", p.nps_detractors),
                ("ces_answered", p.ces_answered),
                ("ces_sum", p.ces_sum),
            )
        ),
    ]
    if dialect == "postgresql":
        pcts = [
            func.percentile_cont(q).within_group(cast(col, Float)).label(f"{name}_{label}")
            for name, col in (("first_response_s", p.fr), ("resolution_s", p.res), ("time_to_abandon_s", p.tta))
            for q, label in ((0.5, "median"), (0.9, "p90"))
        ]
        stmt = select(p.key, *sums, *pcts).group_by(p.key).order_by(p.key)
        rows = (await conn.execute(stmt)).all()
        return [_kpi_row(dict(r._mapping)) for r in rows]
    rows = (await conn.execute(select(p.key, *sums).group_by(p.key).order_by(p.key))).all()
    durations: dict[Any, dict[str, list[float]]] = {}
    for r in await conn.execute(select(p.key, p.fr, p.res, p.tta)):
        lists = durations.setdefault(r.key, {"first_response_s": [], "resolution_s": [], "time_to_abandon_s": []})
        for name, value in (("first_response_s", r.fr), ("resolution_s", r.res), ("time_to_abandon_s", r.tta)):
            if value is not None:
                lists[name].append(float(value))
    out = []
    for r in rows:
        row = dict(r._mapping)
        for name, values in durations.get(r.key, {}).items():
            row[f"{name}_median"] = _pct(values, 0.5)
            row[f"{name}_p90"] = _pct(values, 0.9)
        for name in ("first_response_s", "resolution_s", "time_to_abandon_s"):
            row.setdefault(f"{name}_median", None)
            row.setdefault(f"{name}_p90", None)
        out.append(_kpi_row(row))
    return out


def _ratio(part: Any, whole: Any) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _kpi_row(r: dict[str, Any]) -> dict[str, Any]:
    n = int(r["conversations"])

    def secs(name: str) -> float | None:
        return round(float(r[name]), 3) if r[name] is not None else None

    return {
        "key": r["key"],
        "conversations": n,
        "first_response_s": {"median": secs("first_response_s_median"), "p90": secs("first_response_s_p90")},
        "resolution_s": {"median": secs("resolution_s_median"), "p90": secs("resolution_s_p90")},
        "sla_attainment_pct": round(100 * float(r["sla_met"]) / float(r["sla_total"]), 2) if r["sla_total"] else None,
        "escalation_rate": _ratio(r["escalated"], n),
        "reopen_rate": _ratio(r["reopened"], n),
        "fcr_rate": _ratio(r["fcr"], r["resolved"]),
        "csat_avg": round(float(r["csat_sum"]) / float(r["csat_answered"]), 3) if r["csat_answered"] else None,
        "csat_response_rate": _ratio(r["csat_answered"], r["csat_sent"]),
        "nps": round(100 * (float(r["nps_promoters"]) - float(r["nps_detractors"])) / float(r["nps_answered"]), 2)
        if r["nps_answered"]
        else None,
        "ces_avg": round(float(r["ces_sum"]) / float(r["ces_answered"]), 3) if r["ces_answered"] else None,
        "abandon_rate": _ratio(r["abandoned"], r["calls"]),
        "time_to_abandon_s": {"median": secs("time_to_abandon_s_median"), "p90": secs("time_to_abandon_s_p90")},
    }


async def queue_stats(conn: AsyncConnection, tenant_id: str, now: datetime) -> list[dict[str, Any]]:
    """Live: waiting, longest wait, agents online / with room, expected wait (waiting x recent average handle
    time / agents online, a queueing rule of thumb)."""
    c, q, a, s = t.conversations.c, t.queues.c, t.agents.c, t.assignments.c
    queues = (await conn.execute(select(q.id, q.name).where(q.tenant_id == tenant_id).order_by(q.name))).all()
    waiting = {
        r.queue_id: (r.n, r.oldest)
        for r in await conn.execute(
            select(
                c.queue_id, func.count().label("n"), func.min(func.coalesce(c.queued_at, c.opened_at)).label("oldest")
            )
            .where(c.tenant_id == tenant_id, c.status == ConversationStatus.OPEN.value, c.agent_id.is_(None))
            .group_by(c.queue_id)
        )
    }
    agents = (
        await conn.execute(select(a.id, a.presence, a.capacity, a.queue_ids).where(a.tenant_id == tenant_id))
    ).all()
    load = {
        r.agent_id: r.n
        for r in await conn.execute(
            select(s.agent_id, func.count().label("n"))
            .where(s.tenant_id == tenant_id, s.ended_at.is_(None))
            .group_by(s.agent_id)
        )
    }
    handle = await queries.average_handle_s(conn, tenant_id)
    out = []
    for queue in queues:
        members = [ag for ag in agents if queue.id in (ag.queue_ids or [])]
        online = [ag for ag in members if ag.presence == Presence.ONLINE.value]
        room = [ag for ag in online if load.get(ag.id, 0) < sum(dict(ag.capacity).values() or [0])]
        count, oldest = waiting.get(queue.id, (0, None))
        longest = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        expected = round(count * handle / len(online), 1) if online and handle is not None else None
        out.append(
            {
                "queue_id": queue.id,
                "name": queue.name,
                "waiting": count,
                "longest_wait_s": round(longest, 1),
                "agents_online": len(online),
                "agents_available": len(room),
                "expected_wait_s": expected,
            }
        )
    return out


async def agent_stats(conn: AsyncConnection, tenant_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per agent: presence, live load per channel, conversations handled (assignments ended in the period by a
    resolve) and their average handle time."""
    a, s, c = t.agents.c, t.assignments.c, t.conversations.c
    agents = (
        await conn.execute(select(a.id, a.name, a.presence).where(a.tenant_id == tenant_id).order_by(a.name))
    ).all()
    load: dict[str, dict[str, int]] = {}
    for r in await conn.execute(
        select(s.agent_id, s.channel, func.count().label("n"))
        .where(s.tenant_id == tenant_id, s.ended_at.is_(None))
        .group_by(s.agent_id, s.channel)
    ):
        load.setdefault(r.agent_id, {})[r.channel] = r.n
    dialect = conn.dialect.name
    handled = {
        r.agent_id: (r.n, r.aht)
        for r in await conn.execute(
            select(
                s.agent_id,
                func.count().label("n"),
                func.avg(_seconds(dialect, s.ended_at, s.assigned_at)).label("aht"),
            )
            .join(t.conversations, (c.tenant_id == s.tenant_id) & (c.id == s.conversation_id))
            .where(
                s.tenant_id == tenant_id,
                s.ended_at >= start,
                s.ended_at < end,
                s.ended_at == c.resolved_at,
            )
            .group_by(s.agent_id)
        )
    }
    return [
        {
            "agent_id": ag.id,
            "name": ag.name,
            "presence": ag.presence,
            "load": load.get(ag.id, {}),
            "handled": handled.get(ag.id, (0, None))[0],
            "average_handle_s": round(float(handled[ag.id][1]), 1) if handled.get(ag.id, (0, None))[1] else None,
        }
        for ag in agents
    ]
