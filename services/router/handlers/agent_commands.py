"""Agents' commands on the tenant's routing engine, run by the tenant's owner: presence, offers (accept, decline,
claim), transfers, resolutions, timer ticks and SLA escalations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from services.router.adapters.db.unit_of_work import (
    SqlRepository,
    Unit,
)
from services.router.adapters.views import queries
from services.router.domain.engine import Decision, RoutingEngine
from services.router.domain.errors import InvalidCommand, NotFound
from services.router.domain.model import Presence
from services.router.handlers.command_log import Command, record_outcome
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Clock
from services.router.handlers.routing_owner import Operation, RoutingStates
from services.router.handlers.slas import SlaClock
from services.router.handlers.surveys import Surveys


class AgentCommands:
    """Presence, offers (accept, decline, claim), transfers and resolutions, decided by the tenant's routing
    engine under the tenant's lock: going online pulls waiting work at once; going offline puts the agent's
    conversations back in their queues at their priority; freed capacity is used at once."""

    def __init__(self, repo: SqlRepository, relay: OutboxRelay, clock: Clock, routing: RoutingStates) -> None:
        self.repo = repo
        self.relay = relay
        self.clock = clock
        self.routing = routing
        self.sla: SlaClock | None = None  # set by the composition root
        self.surveys: Surveys | None = None
        self.survey_kind = "csat"

    async def apply(self, command: Command) -> int:
        """A command from the routing log (this router owns its tenant); its outcome is stored with it."""
        a, tenant = command.args, command.tenant
        match command.kind:
            case "set_presence":
                return await self.set_presence(tenant, a["agent_id"], Presence(a["presence"]), command)
            case "accept":
                return await self.accept(tenant, a["agent_id"], a["conversation_id"], command)
            case "decline":
                return await self.decline(tenant, a["agent_id"], a["conversation_id"], command)
            case "claim":
                return await self.claim(tenant, a["agent_id"], a["conversation_id"], command)
            case "transfer":
                return await self.transfer(
                    tenant,
                    a["conversation_id"],
                    agent_id=a.get("agent_id"),
                    queue_id=a.get("queue_id"),
                    command=command,
                )
            case "resolve":
                return await self.resolve(tenant, a["conversation_id"], a.get("note"), a.get("survey"), command)
            case "tick":
                return await self.tick(tenant, command)
            case "escalate":
                return await self.escalate(tenant, a["escalations"], command)
        raise InvalidCommand(f"unknown command {command.kind}")

    async def _run(
        self,
        tenant_id: str,
        operation: Operation | None,
        check: Callable[[Unit, datetime], Awaitable[None]] | None = None,
        released: Sequence[tuple[str, str]] = (),
        command: Command | None = None,
    ) -> int:
        """One routing transaction: check (e.g. the agent exists), decide, save, publish. Returns how many
        feed events it produced."""
        now = self.clock()
        async with self.repo.unit() as u:
            await u.lock_tenants([tenant_id])
            if check is not None:
                await check(u, now)
            outbox = await self.routing.route(u, tenant_id, now, [operation] if operation else [], released)
            await u.add_outbox(outbox, now)
            if command is not None:
                await record_outcome(u.conn, command, (200, {"events": len(outbox)}), now)
        await self.relay.flush()
        return len(outbox)

    async def set_presence(
        self, tenant_id: str, agent_id: str, presence: Presence, command: Command | None = None
    ) -> int:
        async def check(u: Unit, now: datetime) -> None:
            if not await u.set_presence(tenant_id, agent_id, presence):
                raise NotFound("agent")

        return await self._run(
            tenant_id, lambda engine, t: engine.set_presence(agent_id, presence, t), check, command=command
        )

    def _agent_exists(self, tenant_id: str, agent_id: str) -> Callable[[Unit, datetime], Awaitable[None]]:
        async def check(u: Unit, now: datetime) -> None:
            if not await queries.agent_exists(u.conn, tenant_id, agent_id):
                raise NotFound(f"no agent {agent_id}")

        return check

    async def accept(self, tenant_id: str, agent_id: str, conversation_id: str, command: Command | None = None) -> int:
        return await self._run(
            tenant_id,
            lambda engine, t: engine.accept(agent_id, conversation_id, t),
            self._agent_exists(tenant_id, agent_id),
            command=command,
        )

    async def decline(self, tenant_id: str, agent_id: str, conversation_id: str, command: Command | None = None) -> int:
        return await self._run(
            tenant_id,
            lambda engine, t: engine.decline(agent_id, conversation_id, t),
            self._agent_exists(tenant_id, agent_id),
            command=command,
        )

    async def claim(self, tenant_id: str, agent_id: str, conversation_id: str, command: Command | None = None) -> int:
        return await self._run(
            tenant_id,
            lambda engine, t: engine.claim(agent_id, conversation_id, t),
            self._agent_exists(tenant_id, agent_id),
            command=command,
        )

    async def tick(self, tenant_id: str, command: Command | None = None) -> int:
        """Run the tenant's due timers (offer timeouts, overflow, sticky holds, queues opening)."""
        return await self._run(tenant_id, None, command=command)

    async def transfer(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        agent_id: str | None,
        queue_id: str | None,
        command: Command | None = None,
    ) -> int:
        """To another agent (who must be online with room on the channel) or to a queue (routed there again,
        keeping its place in line)."""

        async def check(u: Unit, now: datetime) -> None:
            if not await u.conversation_is_open(tenant_id, conversation_id):
                raise NotFound(f"no open conversation {conversation_id}")

        def move(engine: RoutingEngine, t: float) -> list[Decision]:
            if engine.work(conversation_id) is None:
                raise InvalidCommand("the conversation is not being routed")
            if agent_id is not None:
                return engine.transfer_to_agent(conversation_id, agent_id, t)
            assert queue_id is not None
            return engine.transfer_to_queue(conversation_id, queue_id, t)

        return await self._run(tenant_id, move, check, command=command)

    async def escalate(self, tenant_id: str, escalations: dict[str, str | None], command: Command | None = None) -> int:
        """An SLA warning or breach: raise the conversation's priority, or move it to ``target`` (a queue)."""

        def escalate(engine: RoutingEngine, t: float) -> list[Decision]:
            out: list[Decision] = []
            for conversation_id, target in escalations.items():
                out += engine.escalate(conversation_id, target, t)
            return out

        return await self._run(tenant_id, escalate, command=command)

    async def resolve(
        self,
        tenant_id: str,
        conversation_id: str,
        note: str | None,
        survey: str | None = None,
        command: Command | None = None,
    ) -> int:
        """Resolve with the documented resolution; the clocks stop, the customer is asked for feedback
        (``survey``: csat, nps, ces or none; default SWITCHBOARD_SURVEY_KIND) and the freed capacity goes
        to waiting work at once."""

        released: list[tuple[str, str]] = []

        async def check(u: Unit, now: datetime) -> None:
            agent = await u.resolve_conversation(tenant_id, conversation_id, note, now)
            if agent is not None:
                released.append((conversation_id, agent))
            if self.sla is not None:
                await self.sla.resolved(u, conversation_id, now)
            kind = survey or self.survey_kind
            if self.surveys is not None and kind != "none":
                await self.surveys.send(u, tenant_id, conversation_id, kind, now)

        def release(engine: RoutingEngine, t: float) -> list[Decision]:
            return engine.resolve(conversation_id, t) if engine.work(conversation_id) else []

        return await self._run(tenant_id, release, check, released, command)
