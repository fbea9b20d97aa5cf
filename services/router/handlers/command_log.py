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
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from services.router.adapters.db import tables as t
from services.router.adapters.db.unit_of_work import SqlRepository
from services.router.domain.errors import DomainError, InvalidCommand, InvalidIdentity, NotFound
from services.router.domain.model import Presence
from shared.bus import Bus, Outgoing, Record, deadletter
from shared.topics import Topics

log = logging.getLogger(__name__)

# kind → the arguments it needs (all strings unless noted)
KINDS: dict[str, tuple[str, ...]] = {
    "set_presence": ("agent_id", "presence"),
    "accept": ("agent_id", "conversation_id"),
    "decline": ("agent_id", "conversation_id"),
    "claim": ("agent_id", "conversation_id"),
    "transfer": ("conversation_id",),  # and exactly one of agent_id, queue_id
    "resolve": ("conversation_id",),  # note, survey optional
    "tick": (),
    "escalate": ("escalations",),  # {conversation id: target queue or null}
}
ERRORS: dict[str, tuple[type[DomainError], int]] = {
    "NotFound": (NotFound, 404),
    "InvalidCommand": (InvalidCommand, 409),
    "InvalidIdentity": (InvalidIdentity, 422),
}


class CommandTimeout(DomainError):
    """The tenant's owner did not apply the command in time (a failover in progress). It stays in the log and
    will be applied; a retry with the same Idempotency-Key returns its outcome instead of applying it twice."""

    retriable = True


class BadCommand(ValueError):
    """A record on the command log that can never be applied: dead-lettered with the reason."""


@dataclass(frozen=True, slots=True)
class Command:
    id: str
    tenant: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, tenant: str, kind: str, idempotency_key: str | None = None, **args: Any) -> Command:
        # a client's key names one command per tenant; without one every submission is new
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}\x1f{idempotency_key}") if idempotency_key else uuid.uuid4()
        return cls(str(ident), tenant, kind, args)

    def record(self, topics: Topics) -> Outgoing:
        body = {"id": self.id, "tenant": self.tenant, "kind": self.kind, "args": self.args}
        # keyed by tenant like the tenant's events: same partition number, same owner
        return Outgoing(topics.routing_commands, orjson.dumps(body), key=self.tenant.encode())

    @classmethod
    def parse(cls, raw: bytes) -> Command:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadCommand(f"not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadCommand("not a JSON object")
        ident, tenant, kind, args = body.get("id"), body.get("tenant"), body.get("kind"), body.get("args", {})
        if not (isinstance(ident, str) and 0 < len(ident) <= 64 and isinstance(tenant, str) and tenant):
            raise BadCommand("id and tenant must be non-empty strings")
        if kind not in KINDS:
            raise BadCommand(f"unknown kind {kind!r}")
        if not isinstance(args, dict) or any(name not in args for name in KINDS[kind]):
            raise BadCommand(f"{kind} needs {', '.join(KINDS[kind])}")
        if kind == "set_presence" and args["presence"] not in {p.value for p in Presence}:
            raise BadCommand(f"unknown presence {args['presence']!r}")
        if kind == "escalate" and not isinstance(args["escalations"], dict):
            raise BadCommand("escalations must be an object")
        return cls(ident, tenant, kind, args)


Outcome = tuple[int, dict[str, Any]]  # HTTP-like status, body ({"events": n} or {"error", "detail"})


def outcome_of(error: DomainError) -> Outcome:
    status = ERRORS.get(type(error).__name__, (InvalidCommand, 409))[1]
    return status, {"error": type(error).__name__, "detail": str(error)}


def result_of(outcome: Outcome) -> int:
    """The command's feed event count, or its error raised again where it was submitted."""
    status, body = outcome
    if status == 200:
        return int(body.get("events", 0))
    error = ERRORS.get(str(body.get("error")), (InvalidCommand, 409))[0]
    raise error(str(body.get("detail", "")))


async def stored_outcome(conn: AsyncConnection, command_id: str) -> Outcome | None:
    c = t.routing_commands.c
    row = (await conn.execute(select(c.status, c.body).where(c.id == command_id))).first()
    return (row.status, row.body) if row else None


async def record_outcome(conn: AsyncConnection, command: Command, outcome: Outcome, now: datetime) -> None:
    """In the applying transaction: a second application of the same command fails here and rolls back."""
    await conn.execute(
        insert(t.routing_commands).values(
            id=command.id,
            tenant_id=command.tenant,
            kind=command.kind,
            status=outcome[0],
            body=outcome[1],
            created_at=now,
        )
    )


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


class RoutingCommandLog:
    """What the API calls: submit a command to the log and wait for its outcome, with the signatures of the
    commands themselves (``AgentCommands``, which only the tenant's owner runs)."""

    def __init__(
        self, repo: SqlRepository, bus: Bus, topics: Topics, waiters: Waiters, timeout_s: float = 15.0
    ) -> None:
        self.repo = repo
        self.bus = bus
        self.topics = topics
        self.waiters = waiters
        self.timeout_s = timeout_s

    async def submit(self, command: Command) -> int:
        async with self.repo.reader() as conn:
            done = await stored_outcome(conn, command.id)  # a retried idempotent submission
        if done is not None:
            return result_of(done)
        future = self.waiters.expect(command.id)
        try:
            await self.bus.publish([command.record(self.topics)])
            return result_of(await self._outcome(command.id, future))
        finally:
            self.waiters.forget(command.id)

    async def _outcome(self, command_id: str, future: asyncio.Future[Outcome]) -> Outcome:
        """Applied here: the future settles at once. Applied by another replica: its row appears."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        pause = 0.02
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(future), pause)
            except TimeoutError:
                pass
            async with self.repo.reader() as conn:
                done = await stored_outcome(conn, command_id)
            if done is not None:
                return done
            if loop.time() >= deadline:
                raise CommandTimeout(
                    f"command {command_id} not applied within {self.timeout_s:.0f} s; it will be: retry with the "
                    "same Idempotency-Key to learn its outcome"
                )
            pause = min(0.25, pause * 1.5)

    async def set_presence(self, tenant_id: str, agent_id: str, presence: Presence, key: str | None = None) -> int:
        return await self.submit(
            Command.new(tenant_id, "set_presence", key, agent_id=agent_id, presence=presence.value)
        )

    async def _offer(self, kind: str, tenant_id: str, agent_id: str, conversation_id: str, key: str | None) -> int:
        return await self.submit(Command.new(tenant_id, kind, key, agent_id=agent_id, conversation_id=conversation_id))

    async def accept(self, tenant_id: str, agent_id: str, conversation_id: str, key: str | None = None) -> int:
        return await self._offer("accept", tenant_id, agent_id, conversation_id, key)

    async def decline(self, tenant_id: str, agent_id: str, conversation_id: str, key: str | None = None) -> int:
        return await self._offer("decline", tenant_id, agent_id, conversation_id, key)

    async def claim(self, tenant_id: str, agent_id: str, conversation_id: str, key: str | None = None) -> int:
        return await self._offer("claim", tenant_id, agent_id, conversation_id, key)

    async def transfer(
        self,
        tenant_id: str,
        conversation_id: str,
        *,
        agent_id: str | None,
        queue_id: str | None,
        key: str | None = None,
    ) -> int:
        return await self.submit(
            Command.new(
                tenant_id, "transfer", key, conversation_id=conversation_id, agent_id=agent_id, queue_id=queue_id
            )
        )

    async def resolve(
        self,
        tenant_id: str,
        conversation_id: str,
        note: str | None,
        survey: str | None = None,
        key: str | None = None,
    ) -> int:
        return await self.submit(
            Command.new(tenant_id, "resolve", key, conversation_id=conversation_id, note=note, survey=survey)
        )


Apply = Callable[[Command], Awaitable[int]]


class CommandApplier:
    """The owner's side: apply each command of a batch in log order, each in its own transaction (one that
    fails does not undo the others), and settle whoever waits in this process."""

    def __init__(self, repo: SqlRepository, bus: Bus, topics: Topics, waiters: Waiters, apply: Apply) -> None:
        self.repo = repo
        self.bus = bus
        self.topics = topics
        self.waiters = waiters
        self.apply = apply

    async def handle(self, records: Sequence[Record], now: Callable[[], datetime]) -> None:
        for record in records:
            try:
                command = Command.parse(record.value)
            except BadCommand as exc:
                log.warning("command.rejected", extra={"reason": str(exc), "offset": record.offset})
                await self.bus.publish([deadletter(record, f"bad routing command: {exc}", self.topics.deadletter)])
                continue
            self.waiters.settle(command.id, await self._apply_once(command, now))

    async def _apply_once(self, command: Command, now: Callable[[], datetime]) -> Outcome:
        async with self.repo.reader() as conn:
            done = await stored_outcome(conn, command.id)
        if done is not None:
            return done  # redelivered after a crash between commit and offset commit
        try:
            events = await self.apply(command)
            return 200, {"events": events}
        except DomainError as exc:
            outcome = outcome_of(exc)
        except IntegrityError:
            outcome = None  # applied meanwhile by a replica that still thought it owned the tenant
        except (KeyError, TypeError, ValueError) as exc:
            outcome = 422, {"error": "InvalidCommand", "detail": f"cannot apply {command.kind}: {exc}"}
        async with self.repo.unit() as u:
            existing = await stored_outcome(u.conn, command.id)
            if existing is not None:
                return existing
            if outcome is None:
                raise RuntimeError(f"command {command.id} conflicted but has no stored outcome")
            await record_outcome(u.conn, command, outcome, now())
        return outcome


async def forget_old(repo: SqlRepository, now: datetime, keep: timedelta = timedelta(days=1)) -> int:
    """Outcomes are kept a day: long enough for any client retry with the same Idempotency-Key."""
    async with repo.unit() as u:
        result = await u.conn.execute(delete(t.routing_commands).where(t.routing_commands.c.created_at < now - keep))
        return int(result.rowcount or 0)
