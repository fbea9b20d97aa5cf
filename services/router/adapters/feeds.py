"""Live agent feeds inside one router process: agent id → the open SSE connections of that agent.

Every router instance fans in routing.assignments from the bus (its own consumer group), so an agent's
console gets its events whichever instance it is connected to. A console that falls behind is cut off
(bounded queue) and catches up by reconnecting with Last-Event-ID, replayed from the database."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.feed_events import AgentFeedEvent, as_object

FeedEvent = dict[str, Any]  # an event's JSON object (shared/feed_events.py), as a console is sent it


class FeedHub:
    def __init__(self, max_pending: int = 1000) -> None:
        self.max_pending = max_pending
        self._subscribers: dict[tuple[str, str], set[asyncio.Queue[FeedEvent | None]]] = {}
        self._keys: Counter[bytes] = Counter()  # agent id (a feed record's key) → its open connections

    @contextmanager
    def subscribe(self, tenant_id: str, agent_id: str) -> Iterator[asyncio.Queue[FeedEvent | None]]:
        queue: asyncio.Queue[FeedEvent | None] = asyncio.Queue(self.max_pending)
        key = (tenant_id, agent_id)
        self._subscribers.setdefault(key, set()).add(queue)
        record_key = agent_id.encode()
        self._keys[record_key] += 1
        try:
            yield queue
        finally:
            self._keys[record_key] -= 1
            if not self._keys[record_key]:
                del self._keys[record_key]
            subs = self._subscribers.get(key)
            if subs is not None:
                subs.discard(queue)
                if not subs:
                    del self._subscribers[key]

    def watches(self, record_key: bytes | None) -> bool:
        """Whether a feed record keyed ``record_key`` (its agent's id, ``agent_feed.feed_record``) may be for a
        console connected here: the others are not decoded at all (every instance reads every feed record, and a
        desk's consoles are spread over its instances). An agent id of another tenant may match: ``publish``
        then finds nobody, as for a record without a key."""
        return record_key is None or record_key in self._keys

    def publish(self, event: AgentFeedEvent) -> None:
        queues = list(self._subscribers.get((event.tenant, event.agent_id), ()))
        if not queues:
            return
        sent = as_object(event)  # one JSON object for all of the agent's consoles
        for queue in queues:
            try:
                queue.put_nowait(sent)
            except asyncio.QueueFull:
                # Too slow: end that stream (None); the client reconnects and replays what it missed.
                queue.get_nowait()
                queue.put_nowait(None)

    def subscribers(self) -> int:
        return sum(len(s) for s in self._subscribers.values())
