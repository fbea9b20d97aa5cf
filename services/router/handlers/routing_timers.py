"""Timers that fire without traffic. Every tick: the due timers of the tenants this replica owns (offer
timeouts, overflow, sticky holds, queues opening) and the SLA clocks. Every sweep: a tick command on the log
for tenants with expired offers that no replica holds in memory (their owner applies it), and what is kept for
a bounded time is dropped (command outcomes, dead letters, closed conversations past retention)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from datetime import timedelta

from services.router.handlers.agent_commands import AgentCommands
from services.router.handlers.command_log import forget_old
from services.router.handlers.customer_commands import CustomerCommands
from services.router.handlers.deadletters import DeadLetters
from services.router.handlers.follow_ups import FollowUpSender
from services.router.handlers.ports import Clock, Store
from services.router.handlers.routing_owner import RoutingStates
from services.router.handlers.slas import SlaClock
from shared.bus import Bus
from shared.routing_commands import Command, Tick
from shared.topics import Topics


@dataclass(eq=False)
class RoutingTimers:
    store: Store
    bus: Bus
    topics: Topics
    clock: Clock
    routing: RoutingStates
    executor: AgentCommands
    sla: SlaClock
    deadletters: DeadLetters
    customers: CustomerCommands
    follow_ups: FollowUpSender
    _: KW_ONLY
    deadletter_retention: timedelta
    retention: timedelta | None

    async def tick(self) -> None:
        for tenant_id in sorted(self.routing.cached_due(self.clock())):
            await self.executor.tick(tenant_id)
        await self.sla.tick()
        await self.follow_ups.tick()

    async def sweep(self) -> None:
        now = self.clock()
        async with self.store.reading(snapshot=False) as r:
            due = await r.routing.tenants_with_due_routing(now)
        ticks = [Command.of(t, Tick()).record(self.topics) for t in due if not self.routing.is_cached(t)]
        if ticks:
            await self.bus.publish(ticks)
        await forget_old(self.store, now)
        await self.deadletters.forget_old(self.deadletter_retention)
        if self.retention is not None:
            await self.customers.apply_retention(now - self.retention)
