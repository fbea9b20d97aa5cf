"""Where a queue's routing points at other queues and at agents: ``overflow_to`` and the SLA actions'
``escalate_to`` name queues, the widening ``steps`` name agents (``domain/routing/queue_config.py``). A desk file
writes names, the store keeps ids; ``renamed`` maps one to the other. No I/O."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

Values = dict[str, Any]
SLA_ACTIONS = ("on_warning", "on_breach")


def queue_references(routing: Mapping[str, Any]) -> list[str]:
    """The queues the routing sends work to: overflow, and escalation on an SLA warning or breach."""
    sla = routing.get("sla") or {}
    found = [routing.get("overflow_to")] + [(sla.get(action) or {}).get("escalate_to") for action in SLA_ACTIONS]
    return [q for q in found if q]


def agent_references(routing: Mapping[str, Any]) -> list[str]:
    """The agents the routing's widening steps prefer."""
    return [agent for step in routing.get("steps") or () for agent in step.get("agents") or ()]


def renamed(
    routing: Mapping[str, Any], queues: Mapping[str, str], agents: Mapping[str, str], *, keep_unknown: bool
) -> tuple[Values, bool]:
    """The routing with its references mapped through ``queues`` and ``agents``, and whether every one was.

    ``keep_unknown``: a reference the maps lack stays as it is (reading a stored desk: an id of something gone
    shows as that id). Otherwise it is left out with what depends on it (the overflow's delay, the widening
    steps): the routing of a queue created before the queue or agent it names exists, completed once it does."""
    out = copy.deepcopy(dict(routing))
    complete = True
    target = out.get("overflow_to")
    if target:
        if target in queues:
            out["overflow_to"] = queues[target]
        elif not keep_unknown:
            complete = False
            out.pop("overflow_to")
            out.pop("overflow_after_s", None)
    for action in SLA_ACTIONS:
        taken = (out.get("sla") or {}).get(action) or {}
        target = taken.get("escalate_to")
        if target:
            if target in queues:
                taken["escalate_to"] = queues[target]
            elif not keep_unknown:
                complete = False
                taken.pop("escalate_to")
    preferred = agent_references(routing)
    if keep_unknown or all(agent in agents for agent in preferred):
        for step in out.get("steps") or ():
            if step.get("agents"):
                step["agents"] = [agents.get(agent, agent) for agent in step["agents"]]
    else:
        complete = False
        out.pop("steps")
    return out, complete
