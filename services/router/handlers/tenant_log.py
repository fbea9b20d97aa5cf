"""The log of the tenants this replica owns: their conversation events and routing commands, co-partitioned
(same key, same partition count), so the replica holding partition *p* of both is the single writer of the
tenants hashed to *p* — their customer context and their routing — until the group moves the partition."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from services.router.handlers.command_log import CommandApplier
from services.router.handlers.ingest import ContextStage
from services.router.handlers.metrics import ROUTING_PARTITIONS
from services.router.handlers.ports import Clock
from services.router.handlers.routing_owner import RoutingStates
from shared.bus import Record
from shared.topics import Topics

log = logging.getLogger(__name__)


@dataclass(eq=False)
class TenantLog:
    topics: Topics
    stage: ContextStage
    applier: CommandApplier
    routing: RoutingStates
    clock: Clock

    async def handle(self, records: list[Record]) -> None:
        """A batch in log order: events as one transaction, then the commands (together where they can be).
        What both committed is published once, after the batch, by the relay's loop: one take of the outbox for
        the batch, not one per transaction, while the consume loop goes on (the outbox keeps it until it is
        out, whatever happens to this process)."""
        for r in records:
            if r.key:
                self.routing.note_partition(r.key.decode(errors="replace"), r.partition)
        inbound = [r for r in records if r.topic == self.topics.events]
        async with self.applier.relay.deferred(wait=False):
            if inbound:
                result = await self.stage.handle(inbound)
                log.debug("batch.done", extra=asdict(result))
            await self.applier.handle([r for r in records if r.topic == self.topics.routing_commands], self.clock)

    def owned(self, assignment: frozenset[tuple[str, int]]) -> None:
        """The group gave this replica these partitions: drop the engines of tenants it no longer owns."""
        partitions = {p for topic, p in assignment if topic == self.topics.routing_commands}
        ROUTING_PARTITIONS.set(len(partitions))
        self.routing.retain(partitions)
