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
    complete = _rename_queue(out, "overflow_to", queues, keep_unknown, dependent="overflow_after_s")
    for action in SLA_ACTIONS:
        taken = (out.get("sla") or {}).get(action) or {}
        complete = _rename_queue(taken, "escalate_to", queues, keep_unknown) and complete
    preferred = agent_references(routing)
    if keep_unknown or all(agent in agents for agent in preferred):
        for step in out.get("steps") or ():
            if step.get("agents"):
                step["agents"] = [agents.get(agent, agent) for agent in step["agents"]]
    else:
        complete = False
        out.pop("steps")
    return out, complete


def _rename_queue(
    values: Values, key: str, queues: Mapping[str, str], keep_unknown: bool, dependent: str | None = None
) -> bool:
    """``values[key]``, a queue reference, mapped through ``queues`` in place; False if it named an unknown queue
    and was left out (with ``dependent``, the setting that means nothing without it)."""
    target = values.get(key)
    if target and target in queues:
        values[key] = queues[target]
    elif target and not keep_unknown:
        values.pop(key)
        if dependent is not None:
            values.pop(dependent, None)
        return False
    return True
