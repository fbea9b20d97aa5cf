"""Who may take a piece of work, and who of those gets it: eligibility (declines, language, skills, a sticky
hold) and the queue's strategy over its room index. Time and the round-robin cursor are passed in, so the
choice is a function of its arguments."""

from __future__ import annotations

from collections.abc import Mapping

from sortedcontainers import SortedList

from services.router.domain.routing.specs import Needs, QueueSpec, Strategy, Work
from services.router.domain.routing.state import AgentState


def meets(agent: AgentState, wanted: Needs) -> bool:
    """Whether the agent is someone a line of waiting work asks for (its step's agents, skills, language)."""
    only, skills, language, _ = wanted  # whose queue's agents (the pool) is the caller's to check
    if only is not None and agent.spec.id not in only:
        return False
    if language and agent.spec.languages and language not in agent.spec.languages:
        return False
    return all(agent.spec.skills.get(s, 0) >= lvl for s, lvl in skills)


def eligible(agent: AgentState, work: Work, now: float, *, ignore_reservation: bool = False) -> bool:
    """Whether the agent may be given the work at ``now``, room aside."""
    if work.not_before > now:
        return False  # a callback before its window: nobody yet
    if work.declined_by and work.declined_by.get(agent.spec.id, 0.0) > now:
        return False
    if work.language and agent.spec.languages and work.language not in agent.spec.languages:
        return False
    if work.only is not None and agent.spec.id not in work.only:
        return False
    if work.skills and any(agent.spec.skills.get(s, 0) < lvl for s, lvl in work.skills.items()):
        return False
    # while a preferred agent's hold lasts (owner, sticky), nobody else takes it
    return not (
        not ignore_reservation
        and work.held_for is not None
        and work.held_for != agent.spec.id
        and work.reserved_until > now
    )


def best_agent(
    room: SortedList,
    agents: Mapping[str, AgentState],
    work: Work,
    queue: QueueSpec,
    rr_cursor: dict[str, str],
    now: float,
) -> AgentState | None:
    """The eligible agent with room who gets the work under the queue's strategy. ``room`` is the queue's room
    index for the work's channel, ordered (load, last assigned, id): its head is least-loaded, longest-idle.
    Round robin rotates by agent id from ``rr_cursor[queue.id]`` and moves that cursor."""
    if queue.strategy is Strategy.ROUND_ROBIN:
        by_id = sorted(rank[2] for rank in room)  # the rotation order
        if not by_id:
            return None
        start = next((i for i, a in enumerate(by_id) if a > rr_cursor.get(queue.id, "")), 0)
        for agent_id in by_id[start:] + by_id[:start]:
            agent = agents[agent_id]
            if eligible(agent, work, now):
                rr_cursor[queue.id] = agent_id
                return agent
        return None
    if work.only is not None and len(work.only) < len(room):  # a step naming a few agents: look at them only
        named = [agents[a] for a in work.only if a in agents and agents[a].rank in room]
        return min((a for a in named if eligible(a, work, now)), key=lambda a: a.rank, default=None)
    for _, _, agent_id in room:
        agent = agents[agent_id]
        if eligible(agent, work, now):
            return agent
    return None
