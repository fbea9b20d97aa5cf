"""The routing command log: one writer per tenant.

Agents' commands (presence, accept, decline, claim, transfer, resolve) and timers (ticks, SLA escalations) go
to ``routing.commands`` keyed by tenant. That topic is co-partitioned with ``conversation.events`` (same key,
same partition count, range assignment), so the router that holds a tenant's partition is the only one that
routes it: it applies the tenant's events and commands in log order against the engine it keeps in memory,
and a replica that takes the partition over rebuilds that engine from PostgreSQL (``RoutingStates``).

Whoever submits a command (any replica, on a REST call) waits for its outcome: at once when this process
applied it, otherwise from ``routing_commands``, the row the owner writes in the very transaction that applied
the command. That row is also the idempotency key: a redelivered command is answered, not applied again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.router.domain.errors import BY_NAME, CommandTimeout, DomainError, InvalidCommand
from services.router.handlers.outbox import OutboxRelay
from services.router.handlers.ports import Store, UnitOfWork
from services.router.handlers.ports.command_outcomes import AlreadyApplied, Applied, Outcome
from shared.bus import Bus, Record, deadletter
from shared.events import InvalidEvent
from shared.routing_commands import Command, RoutingCommand
from shared.topics import Topics

log = logging.getLogger(__name__)


def outcome_of(error: DomainError) -> Outcome:
    return error.status, {"error": type(error).__name__, "detail": str(error)}


def result_of(outcome: Outcome) -> int:
    """The command's feed event count, or its error raised again where it was submitted."""
    status, body = outcome
    if status == 200:
        return int(body.get("events", 0))
    raise BY_NAME.get(str(body.get("error")), InvalidCommand)(str(body.get("detail", "")))


async def record_outcome(u: UnitOfWork, command: Command, outcome: Outcome, now: datetime) -> None:
    """In the applying transaction: a second application of the same command fails here and rolls back."""
    await u.outcomes.record(command.id, command.tenant, command.kind, outcome, now)


async def record_outcomes(u: UnitOfWork, outcomes: Sequence[tuple[Command, Outcome]], now: datetime) -> None:
    """``record_outcome`` of several commands applied in one transaction, in one write."""
    await u.outcomes.record_many([Applied(c.id, c.tenant, c.kind, outcome) for c, outcome in outcomes], now)


class Waiters:
    """Submissions of this process waiting for their outcome."""

    def __init__(self) -> None:
        self._futures: dict[str, asyncio.Future[Outcome]] = {}

    def expect(self, command_id: str) -> asyncio.Future[Outcome]:
        future = self._futures.get(command_id)
        if future is None:
            future = self._futures[command_id] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, command_id: str) -> None:
        self._futures.pop(command_id, None)

    def settle(self, command_id: str, outcome: Outcome) -> None:
        future = self._futures.pop(command_id, None)
        if future is not None and not future.done():
            future.set_result(outcome)


@dataclass(eq=False)
class RoutingCommandLog:
    """The one way to run a routing command from anywhere (the API, on any replica): submit it to the log and
    wait for its outcome, which the tenant's owner stores in the transaction that applies it."""

    repo: Store
    bus: Bus
    topics: Topics
    waiters: Waiters
    timeout_s: float = 15.0
    owns: Callable[[str], bool] = lambda _tenant_id: False  # whether this replica applies the tenant's commands
    owned_poll_s: float = 1.0

    async def run(self, tenant_id: str, body: RoutingCommand, idempotency_key: str | None = None) -> int:
        """Submit ``body`` for the tenant; returns how many feed events it produced, or raises its error."""
        return await self.submit(Command.of(tenant_id, body, idempotency_key), keyed=idempotency_key is not None)

    async def submit(self, command: Command, *, keyed: bool = True) -> int:
        """``keyed``: the command's id comes from the client's idempotency key, so it may be a retry of one
        applied already; a keyless command's id is new, and nothing is read before it is submitted."""
        if keyed:
            async with self.repo.reading(snapshot=False) as r:
                done = await r.outcomes.get(command.tenant, command.id)
            if done is not None:
                return result_of(done)
        future = self.waiters.expect(command.id)
        try:
            await self.bus.publish([command.record(self.topics)])
            return result_of(await self._outcome(command, future, self.owns(command.tenant)))
        finally:
            self.waiters.forget(command.id)

    async def _outcome(self, command: Command, future: asyncio.Future[Outcome], owned: bool) -> Outcome:
        """Applied here: the future settles at once. Applied by another replica: its row appears, so it is
        looked for every 20 ms at first, then less often; when this replica owns the tenant, only every
        ``owned_poll_s`` (in case the tenant moves to another replica meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        pause = self.owned_poll_s if owned else 0.02
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), pause)
            except TimeoutError:
                pass
            async with self.repo.reading(snapshot=False) as r:
                done = await r.outcomes.get(command.tenant, command.id)
            if done is not None:
                return done
            if loop.time() >= deadline:
                raise CommandTimeout(
                    f"command {command.id} not applied within {self.timeout_s:.0f} s; it will be: retry with the "
                    "same Idempotency-Key to learn its outcome"
                )
            pause = self.owned_poll_s if owned else min(0.25, pause * 1.5)


Apply = Callable[[Command], Awaitable[int]]
ApplyMany = Callable[[Mapping[str, Sequence[Command]]], Awaitable[dict[str, Outcome] | None]]


@dataclass(eq=False)
class CommandApplier:
    """The owner's side: apply each command of a batch in log order, each in its own transaction (one that
    fails does not undo the others), and settle whoever waits in this process."""

    repo: Store
    bus: Bus
    topics: Topics
    waiters: Waiters
    apply: Apply
    relay: OutboxRelay
    apply_many: ApplyMany | None = None  # commands of a batch in one transaction, when they all apply

    async def handle(self, records: Sequence[Record], now: Callable[[], datetime]) -> None:
        commands: list[Command] = []
        for record in records:
            try:
                commands.append(Command.decode(record.value))
            except InvalidEvent as exc:
                log.warning("command.rejected", extra={"reason": str(exc), "offset": record.offset})
                await self.bus.publish([deadletter(record, f"bad routing command: {exc}", self.topics.deadletter)])
        if not commands:
            return
        async with self.repo.reading(snapshot=False) as r:  # redelivered after a crash between commit and offset commit
            done = await r.outcomes.get_many([(c.tenant, c.id) for c in commands])
        async with self.relay.deferred():  # what the commands committed goes out once, at the batch's end
            if self.apply_many is not None:
                await self._apply_together(commands, done)
            for command in commands:
                if command.id not in done:  # one at a time: a copy earlier in this batch counts as done
                    done[command.id] = await self._apply_once(command, now)
        for command in commands:  # answered once applied (their feed events are out, or kicked to the relay)
            self.waiters.settle(command.id, done[command.id])

    async def _apply_together(self, commands: Sequence[Command], done: dict[str, Outcome]) -> None:
        """The commands not applied yet, every tenant's in one transaction (log order kept within each tenant);
        if they do not apply as a whole, each tenant's in its own, and a tenant whose commands still do not is
        left to the one-by-one path."""
        assert self.apply_many is not None
        by_tenant: dict[str, dict[str, Command]] = {}
        for command in commands:
            if command.id not in done:
                by_tenant.setdefault(command.tenant, {}).setdefault(command.id, command)
        if sum(len(pending) for pending in by_tenant.values()) < 2:
            return
        groups = [by_tenant] if len(by_tenant) > 1 else []
        groups += [{tenant_id: pending} for tenant_id, pending in by_tenant.items() if len(pending) > 1]
        for group in groups:
            if all(command_id in done for pending in group.values() for command_id in pending):
                continue  # applied with every tenant's
            applied = await self.apply_many({tenant_id: list(pending.values()) for tenant_id, pending in group.items()})
            if applied is not None:
                done.update(applied)

    async def _apply_once(self, command: Command, now: Callable[[], datetime]) -> Outcome:
        try:
            events = await self.apply(command)
            return 200, {"events": events}
        except DomainError as exc:
            outcome = outcome_of(exc)
        except AlreadyApplied:
            outcome = None  # applied meanwhile by a replica that still thought it owned the tenant
        async with self.repo.unit() as u:
            existing = await u.outcomes.get(command.tenant, command.id)
            if existing is not None:
                return existing
            if outcome is None:
                raise RuntimeError(f"command {command.id} conflicted but has no stored outcome")
            await record_outcome(u, command, outcome, now())
        return outcome


async def forget_old(repo: Store, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Outcomes are kept a day: long enough for any client retry with the same Idempotency-Key."""
    async with repo.unit() as u:
        return await u.outcomes.forget_before(now - keep)
