"""Ingress of conversation events the API takes in (in-app messages, callback requests): onto the events
topic, keyed by the event's partition key, where the context stage takes them from. Accepted means durably on
the bus."""

from __future__ import annotations

from shared import tracing
from shared.bus import Bus, Outgoing
from shared.events import ConversationEvent, encode_event
from shared.topics import Topics


class Ingress:
    def __init__(self, bus: Bus, topics: Topics) -> None:
        self.bus = bus
        self.topics = topics

    async def accept(self, event: ConversationEvent) -> None:
        trace = tracing.headers()  # the request's span: the router's work on the event continues its trace
        await self.bus.publish([Outgoing(self.topics.events, encode_event(event), event.partition_key(), trace)])
