"""Agents' commands on the tenant's routing engine, run by the tenant's owner: presence, offers (accept, decline,
claim), transfers, resolutions, timer ticks and SLA escalations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from services.router.domain.errors import DomainError, InvalidCommand, NotFound
from services.router.domain.model import Presence
from services.router.domain.presence import DISCONNECTED
from services.router.domain.routing.decisions import Assigned, Decision, Offered, Unassigned
from services.router.domain.routing.engine import RoutingEngine
from services.router.handlers.command_log import outcome_of, record_outcome, record_outcomes
from services.router.handlers.follow_ups import FollowUpSender
from services.router.handlers.outbox import OutboxWriter
from services.router.handlers.ports import UnitOfWork
from services.router.handlers.ports.command_outcomes import AlreadyApplied, Outcome
from services.router.handlers.routing_owner import Operation, Pass, RoutingStates
from services.router.handlers.slas import SlaClock
from services.router.handlers.surveys import Surveys
from shared.routing_commands import (
    Accept,
    Claim,
    Command,
    Decline,
    Escalate,
    Resolve,
    RoutingCommand,
    SetPresence,
    Tick,
    Transfer,
)

Check = Callable[[UnitOfWork, datetime], Awaitable[None]]

# Commands the routing engine itself may refuse (no open offer, not waiting, no room), having checked and written
# nothing before: within a pass of many commands such a refusal is that command's outcome, and the pass goes on.
# The engine refuses before it changes anything (tests/unit/test_engine_properties.py ``agent_moves``), so the
# engine stays what the store will hold. Any other failure in a pass undoes the whole transaction.
REFUSED_IN_THE_ENGINE: frozenset[type[RoutingCommand]] = frozenset({Accept, Decline, Claim, Transfer})


@dataclass(frozen=True)
class _Resolving:
    """A resolution as ``apply_many`` writes it together with the resolutions next to it in the log."""

    conversation_id: str
    note: str | None
    survey: str  # csat, nps, ces or none
    released: list[tuple[str, str]]  # filled in when written: (conversation, the agent it freed)


@dataclass
class _Plan:
    """One command as ``_run`` would run it: what it checks and writes first, then what it asks the engine."""

    operation: Operation | None
    check: Check | None
    released: Sequence[tuple[str, str]]
    command: Command | None
    resolving: _Resolving | None = None
    agent_id: str | None = None  # an agent who must exist (``apply_many`` asks for all of them at once)


# Set while ``apply_many`` collects its commands' plans: ``_run`` then records instead of running.
_planning: ContextVar[list[_Plan] | None] = ContextVar("agent_commands_planning", default=None)


@dataclass(eq=False)
class AgentCommands(OutboxWriter):
    """The routing commands, run by the tenant's owner: each decided by the tenant's routing engine under the
    tenant's lock, saved with its outcome in one transaction, then published. Going online pulls waiting work at
    once; going offline puts the agent's conversations back in their queues at their priority; freed capacity
    is used at once. ``HANDLERS`` below names the method of each command type."""

    routing: RoutingStates
    sla: SlaClock
    surveys: Surveys
    survey_kind: str
    connection_stale: timedelta = timedelta(seconds=30)
    follow_ups: FollowUpSender | None = None

    async def apply(self, command: Command) -> int:
        """A command from the routing log (this router owns its tenant); its outcome is stored with it. Returns
        how many feed events it produced."""
        handler: Handler[Any] = HANDLERS[type(command.body)]
        return await handler(self, command.tenant, command.body, command)

    async def apply_many(self, batches: Mapping[str, Sequence[Command]]) -> dict[str, Outcome] | None:
        """Several commands, of one tenant or of several (tenant → its commands in log order), in one routing
        transaction: each one's checks and writes in log order, then one engine pass per tenant running their
        operations in log order (``route_many``: each table written once for all the tenants), saved with every
        outcome. A command the engine refuses (``REFUSED_IN_THE_ENGINE``) gets its error as its outcome, and the
        others apply. Returns each command's outcome; None, with nothing written, if any other failure came up
        (a check refused, or a command applied already by another writer): the caller then applies them in
        smaller groups, down to one by one, each failure on its own."""
        planned: dict[str, list[_Plan]] = {}
        for tenant_id, commands in batches.items():
            plans = planned[tenant_id] = []
            token = _planning.set(plans)
            try:
                for command in commands:
                    await self.apply(command)  # recorded by _run, not run
            finally:
                _planning.reset(token)
        counts = {tenant_id: [0] * len(plans) for tenant_id, plans in planned.items()}
        refused: dict[tuple[str, int], Outcome] = {}

        def counted(tenant_id: str, n: int, plan: _Plan) -> Operation:
            operation = plan.operation
            refusable = plan.command is not None and type(plan.command.body) in REFUSED_IN_THE_ENGINE

            def run(engine: RoutingEngine, t: float) -> list[Decision]:
                try:
                    decisions = operation(engine, t) if operation is not None else []
                except DomainError as error:
                    if not refusable:
                        raise
                    refused[tenant_id, n] = outcome_of(error)
                    return []
                counts[tenant_id][n] = sum(1 for d in decisions if isinstance(d, Offered | Assigned | Unassigned))
                return decisions

            return run

        now = self.clock()
        recorded: list[tuple[Command, Outcome]] = []
        try:
            async with self.repo.unit() as u:
                await u.routing.lock_tenants(planned)
                await self._check_all(u, planned, now)
                passes = {
                    tenant_id: Pass(
                        [counted(tenant_id, n, plan) for n, plan in enumerate(plans)],
                        [r for plan in plans for r in plan.released],
                        cleared=[p.resolving.conversation_id for p in plans if p.resolving is not None],
                    )
                    for tenant_id, plans in planned.items()
                }
                routed = await self.routing.route_many(u, passes, now)
                await u.outbox.add(routed.outbox, now)
                for tenant_id, plans in planned.items():
                    mine = counts[tenant_id]
                    applied = [n for n in range(len(plans)) if (tenant_id, n) not in refused]
                    if applied:  # the pass's own (due timers, releases announced) go to its first applied command
                        mine[applied[0]] += routed.by_tenant.get(tenant_id, 0) - sum(mine)
                    for n, plan in enumerate(plans):
                        if plan.command is not None:
                            recorded.append((plan.command, refused.get((tenant_id, n)) or (200, {"events": mine[n]})))
                await record_outcomes(u, recorded, now)
        except (DomainError, AlreadyApplied):
            return None  # rolled back; the engines this pass changed are dropped and rebuilt by the next
        await self.relay.flush()
        return {command.id: outcome for command, outcome in recorded}

    async def _check_all(self, u: UnitOfWork, planned: Mapping[str, Sequence[_Plan]], now: datetime) -> None:
        """Each tenant's plans' checks and writes in log order: a check that reads the database sees the
        resolutions before it in its tenant's log written, so those are written just before it, together; every
        other resolution is written with every other tenant's (one statement per table for all of them). An
        accept, decline or claim reads nothing (the agents who must exist are read in one statement for all), so
        the resolutions between an agent's accepts are written at once, not one run of them at a time."""
        wanted = {(tenant_id, p.agent_id) for tenant_id, plans in planned.items() for p in plans if p.agent_id}
        known = await u.routing.agents_known(wanted) if wanted else set()
        trailing: dict[str, list[_Resolving]] = {}
        for tenant_id, plans in planned.items():
            together: list[_Resolving] = []
            for plan in plans:
                if plan.resolving is not None:
                    together.append(plan.resolving)
                    continue
                if plan.agent_id is not None and (tenant_id, plan.agent_id) not in known:
                    raise NotFound(f"no agent {plan.agent_id}")
                if plan.check is not None:
                    if together:
                        await self._resolve_all(u, {tenant_id: together}, now)
                        together = []
                    await plan.check(u, now)
            trailing[tenant_id] = together
        await self._resolve_all(u, trailing, now)

    async def _resolve_all(self, u: UnitOfWork, resolving: Mapping[str, Sequence[_Resolving]], now: datetime) -> None:
        """Resolutions (tenant → its resolutions) written together, one statement per table whatever their
        number and their tenants': the conversations resolved and their assignments ended, their clocks stopped,
        surveys asked, follow-ups scheduled."""
        notes = {(tenant_id, r.conversation_id): r.note for tenant_id, all_ in resolving.items() for r in all_}
        if len(notes) < sum(len(all_) for all_ in resolving.values()):  # the second would be refused (not open)
            raise InvalidCommand("a conversation resolved twice in one batch")
        if not notes:
            return
        clocks = await self.sla.running(u, list(notes))  # read before the resolution empties them
        agents = await u.conversations.resolve_conversations(notes, now)
        await self.sla.stopped(u, clocks, now)
        surveys = [
            (t, r.conversation_id, r.survey) for t, all_ in resolving.items() for r in all_ if r.survey != "none"
        ]
        if surveys:
            await self.surveys.send_many(u, surveys, now)
        for tenant_id, all_ in resolving.items():
            if self.follow_ups is not None and all_:
                await self.follow_ups.schedule(u, tenant_id, [r.conversation_id for r in all_], now)
            for r in all_:
                agent = agents[(tenant_id, r.conversation_id)]
                if agent is not None:
                    r.released.append((r.conversation_id, agent))

    async def tick(self, tenant_id: str) -> int:
        """The owner's own timer pass (no command on the log: nothing waits for it)."""
        return await self._run(tenant_id, None)

    async def _run(
        self,
        tenant_id: str,
        operation: Operation | None,
        check: Check | None = None,
        released: Sequence[tuple[str, str]] = (),
        command: Command | None = None,
        resolving: _Resolving | None = None,
        agent_id: str | None = None,
    ) -> int:
        """One routing transaction: check (``agent_id``: that agent exists; ``check``: anything else), decide,
        save, publish. Returns how many feed events about work it produced (presence changes aside). Within
        ``apply_many``: only recorded (``resolving``: the resolution ``check`` writes, for ``apply_many`` to
        write with its neighbours)."""
        plans = _planning.get()
        if plans is not None:
            plans.append(_Plan(operation, None if resolving else check, released, command, resolving, agent_id))
            return 0
        now = self.clock()
        async with self.repo.unit() as u:
            await u.routing.lock_tenants([tenant_id])
            await self._check_all(u, {tenant_id: [_Plan(operation, check, released, command, None, agent_id)]}, now)
            cleared = [resolving.conversation_id] if resolving is not None else []
            operations = [operation] if operation else []
            routed = await self.routing.route(u, tenant_id, now, operations, released, cleared=cleared)
            await u.outbox.add(routed.outbox, now)
            if command is not None:
                await record_outcome(u, command, (200, {"events": routed.work_events}), now)
        await self.relay.flush()
        return routed.work_events

    async def set_presence(self, tenant_id: str, c: SetPresence, command: Command) -> int:
        """Routing stores the presence with its reason (who set it, or a lost connection) and tells the agent's
        and the supervisors' feeds."""
        presence = Presence(c.presence)
        reconnected = False

        async def check(u: UnitOfWork, now: datetime) -> None:
            nonlocal reconnected
            # inferred by a sweep: stands only if no connection came back since
            reconnected = await u.connections.live(tenant_id, c.agent_id, now - self.connection_stale)

        def change(engine: RoutingEngine, t: float) -> list[Decision]:
            return [] if reconnected else engine.set_presence(c.agent_id, presence, t, c.reason or "agent")

        inferred = check if c.reason == DISCONNECTED else None
        return await self._run(tenant_id, change, inferred, command=command, agent_id=c.agent_id)

    async def accept(self, tenant_id: str, c: Accept, command: Command) -> int:
        return await self._agents_own(tenant_id, c, command, RoutingEngine.accept)

    async def decline(self, tenant_id: str, c: Decline, command: Command) -> int:
        return await self._agents_own(tenant_id, c, command, RoutingEngine.decline)

    async def claim(self, tenant_id: str, c: Claim, command: Command) -> int:
        return await self._agents_own(tenant_id, c, command, RoutingEngine.claim)

    async def _agents_own(
        self,
        tenant_id: str,
        c: Accept | Decline | Claim,
        command: Command,
        decide: Callable[[RoutingEngine, str, str, float], list[Decision]],
    ) -> int:
        """An agent's own move on one conversation (an offer, or a waiting conversation to claim)."""
        return await self._run(
            tenant_id,
            lambda engine, t: decide(engine, c.agent_id, c.conversation_id, t),
            command=command,
            agent_id=c.agent_id,
        )

    async def run_timers(self, tenant_id: str, c: Tick, command: Command) -> int:
        """Run the tenant's due timers (offer timeouts, overflow, sticky holds, queues opening)."""
        return await self._run(tenant_id, None, command=command)

    async def transfer(self, tenant_id: str, c: Transfer, command: Command) -> int:
        """To another agent (who must be online with room on the channel) or to a queue (routed there again,
        keeping its place in line)."""

        async def check(u: UnitOfWork, now: datetime) -> None:
            if not await u.conversations.conversation_is_open(tenant_id, c.conversation_id):
                raise NotFound(f"no open conversation {c.conversation_id}")

        def move(engine: RoutingEngine, t: float) -> list[Decision]:
            if engine.work(c.conversation_id) is None:
                raise InvalidCommand("the conversation is not being routed")
            if c.agent_id is not None:
                return engine.transfer_to_agent(c.conversation_id, c.agent_id, t)
            assert c.queue_id is not None
            return engine.transfer_to_queue(c.conversation_id, c.queue_id, t)

        return await self._run(tenant_id, move, check, command=command)

    async def escalate(self, tenant_id: str, c: Escalate, command: Command) -> int:
        """SLA warnings and breaches: raise each conversation's priority, or move it to its target queue."""

        def escalate(engine: RoutingEngine, t: float) -> list[Decision]:
            out: list[Decision] = []
            for conversation_id, target in c.escalations.items():
                out += engine.escalate(conversation_id, target, t)
            return out

        return await self._run(tenant_id, escalate, command=command)

    async def resolve(self, tenant_id: str, c: Resolve, command: Command) -> int:
        """Resolve with the documented resolution; the clocks stop, the customer is asked for feedback
        (``survey``: csat, nps, ces or none; default SWITCHBOARD_SURVEY_KIND), a follow-up is scheduled if
        the queue has one, and the freed capacity goes to waiting work at once."""
        resolving = _Resolving(c.conversation_id, c.note, c.survey or self.survey_kind, [])

        async def check(u: UnitOfWork, now: datetime) -> None:
            await self._resolve_all(u, {tenant_id: [resolving]}, now)

        def release(engine: RoutingEngine, t: float) -> list[Decision]:
            return engine.resolve(c.conversation_id, t) if engine.work(c.conversation_id) else []

        return await self._run(tenant_id, release, check, resolving.released, command, resolving)


C = TypeVar("C", bound=RoutingCommand)
Handler = Callable[[AgentCommands, str, C, Command], Awaitable[int]]

# One line per command type: adding a command is one model in shared/routing_commands.py, one method above,
# and one line here.
HANDLERS: dict[type[Any], Handler[Any]] = {
    SetPresence: AgentCommands.set_presence,
    Accept: AgentCommands.accept,
    Decline: AgentCommands.decline,
    Claim: AgentCommands.claim,
    Transfer: AgentCommands.transfer,
    Resolve: AgentCommands.resolve,
    Tick: AgentCommands.run_timers,
    Escalate: AgentCommands.escalate,
}
