"""The thinnest routing policy: pick a queue by channel, then the least-loaded online agent of that queue
with room on the channel, longest idle first on a tie (the classic "longest idle agent" rule).

Pure: takes values and a clock reading, returns decisions and mutates only the AgentSlot loads it was given.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from services.router.domain.model import AgentSlot, Assignment, Presence, QueueRule, WaitingConversation

_NEVER = datetime.min


def select_queue(queues: Sequence[QueueRule], channel: str) -> QueueRule | None:
    """First non-default queue that takes the channel, else the default queue, else None."""
    for queue in queues:
        if not queue.is_default and queue.accepts(channel):
            return queue
    return next((q for q in queues if q.is_default), None)


def select_agent(agents: Iterable[AgentSlot], queue_id: str, channel: str) -> AgentSlot | None:
    best: AgentSlot | None = None
    best_key: tuple[int, datetime, str] | None = None
    for agent in agents:
        if agent.presence is not Presence.ONLINE or queue_id not in agent.queue_ids:
            continue
        if not agent.has_room(channel):
            continue
        last = agent.last_assigned_at.replace(tzinfo=None) if agent.last_assigned_at else _NEVER
        key = (agent.total_load(), last, agent.id)
        if best_key is None or key < best_key:
            best, best_key = agent, key
    return best


def assign(
    waiting: Sequence[WaitingConversation],
    queues: Sequence[QueueRule],
    agents: Sequence[AgentSlot],
    now: datetime,
) -> tuple[list[Assignment], dict[str, str | None]]:
    """Assign each waiting conversation, in the order given (oldest first), to the best agent with room.

    Returns the assignments and, for every conversation, the queue it waits in (None: no queue takes it).
    Loads are updated as it goes, so one call never exceeds an agent's capacity.
    """
    assignments: list[Assignment] = []
    queued: dict[str, str | None] = {}
    for conv in waiting:
        queue_id = conv.queue_id
        if queue_id is None:
            queue = select_queue(queues, conv.channel)
            queue_id = queue.id if queue else None
        queued[conv.id] = queue_id
        if queue_id is None:
            continue
        agent = select_agent(agents, queue_id, conv.channel)
        if agent is None:
            continue
        agent.load[conv.channel] = agent.load.get(conv.channel, 0) + 1
        agent.last_assigned_at = now
        assignments.append(Assignment(conv.id, agent.id, queue_id, conv.channel, now))
    return assignments, queued
