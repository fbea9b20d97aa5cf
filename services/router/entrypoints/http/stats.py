"""How the desk is doing: live queue and agent statistics, and KPIs over a period (definitions in
adapters/stats.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from services.router.adapters.views import stats
from services.router.domain.errors import InvalidCommand
from services.router.entrypoints.http.deps import RouterDep, StaffPrincipal, SupervisorPrincipal
from services.router.entrypoints.http.params import QueryInstant

router = APIRouter(tags=["stats"])


async def _period(
    router_: RouterDep,
    start: Annotated[QueryInstant, Query(alias="from")] = None,
    end: Annotated[QueryInstant, Query(alias="to")] = None,
) -> tuple[datetime, datetime]:
    """The ``from`` and ``to`` a report covers: by default the 7 days to now."""
    end = end or router_.clock()
    start = start or end - timedelta(days=7)
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidCommand("give times with a zone, e.g. 2026-11-23T00:00:00Z")
    if start >= end:
        raise InvalidCommand("from must be before to")
    return start, end


Period = Annotated[tuple[datetime, datetime], Depends(_period)]


@router.get("/v1/stats/queues")
async def queue_stats(router_: RouterDep, principal: StaffPrincipal) -> dict[str, Any]:
    """Now: waiting, longest wait, agents online and available, expected wait, per queue."""
    async with router_.repo.reader() as conn:
        items = await stats.queue_stats(conn, principal.tenant_id, router_.clock())
    return {"items": items}


@router.get("/v1/stats/agents")
async def agent_stats(router_: RouterDep, principal: SupervisorPrincipal, period: Period) -> dict[str, Any]:
    """Per agent: presence, load per channel now, handled in the period and average handle time."""
    start, end = period
    async with router_.repo.reader() as conn:
        items = await stats.agent_stats(conn, principal.tenant_id, start, end)
    return {"from": start, "to": end, "items": items}


@router.get("/v1/stats/kpis")
async def kpis(
    router_: RouterDep,
    principal: SupervisorPrincipal,
    period: Period,
    group_by: Literal["none", "queue", "channel", "agent"] = "none",
) -> dict[str, Any]:
    """KPIs of the conversations opened in [from, to) (default: the last 7 days), overall or per queue,
    channel or agent: first response and resolution times (median, p90), SLA attainment, escalation,
    reopen and first-contact resolution rates, CSAT average and response rate."""
    start, end = period
    async with router_.repo.reader() as conn:
        items = await stats.kpis(conn, principal.tenant_id, start, end, group_by)
    return {"from": start, "to": end, "group_by": group_by, "items": items}
