"""Routing commands: what may change a tenant's routing besides its conversation events, as types.

Each command is one frozen model with a ``kind`` discriminator; the tenant's owner runs it through one handler
table keyed by type (``services/router/handlers/agent_commands.py``). On the wire (``routing.commands``, key:
tenant) a command travels in a versioned envelope::

    {"schema_version": 1, "id": "...", "tenant": "...", "kind": "accept", "args": {"agent_id": ..., ...}}

``id`` is the idempotency key (a client's ``Idempotency-Key`` names one command per tenant). A record without
``schema_version`` (written before it existed) is read as version 1; an unknown version or kind is refused
with ``InvalidCommandRecord`` and dead-lettered."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shared.bus import Outgoing
from shared.events import InvalidEvent, UnsupportedSchemaVersion, json_object
from shared.topics import Topics

SCHEMA_VERSION = 1
Ref = Annotated[str, Field(min_length=1, max_length=64)]
# Optional fields added to a command after it first shipped, without a new schema version: encoded only when set.
ADDED_IN_VERSION_1 = frozenset({"reason"})


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SetPresence(_Command):
    """The agent's presence as they (or a supervisor) set it; going online pulls waiting work at once."""

    kind: Literal["set_presence"] = "set_presence"
    agent_id: Ref
    presence: Literal["online", "away", "offline"]
    # who or what set it: agent, supervisor, disconnected (inferred from connections); absent: agent
    reason: Ref | None = None


class _AgentTakes(_Command):
    """An agent's answer to an offer, or their pull of waiting work: who, and which conversation."""

    kind: str  # each command's own literal; declared here so that it stays first on the wire
    agent_id: Ref
    conversation_id: Ref


class Accept(_AgentTakes):
    """Accept an offer."""

    kind: Literal["accept"] = "accept"


class Decline(_AgentTakes):
    """Decline an offer: offered to the next eligible agent."""

    kind: Literal["decline"] = "decline"


class Claim(_AgentTakes):
    """Take a waiting conversation from a manual queue."""

    kind: Literal["claim"] = "claim"


class Transfer(_Command):
    """To another agent (online, with room) or to a queue (keeping its place in line): exactly one of them."""

    kind: Literal["transfer"] = "transfer"
    conversation_id: Ref
    agent_id: Ref | None = None
    queue_id: Ref | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Transfer:
        if (self.agent_id is None) == (self.queue_id is None):
            raise ValueError("a transfer names exactly one of agent_id, queue_id")
        return self


class Resolve(_Command):
    """The documented resolution; ``survey``: csat, nps, ces, none, or null for the tenant's default."""

    kind: Literal["resolve"] = "resolve"
    conversation_id: Ref
    note: Annotated[str, Field(max_length=10_000)] | None = None
    survey: Literal["csat", "nps", "ces", "none"] | None = None


class Tick(_Command):
    """Run the tenant's due routing timers (offer timeouts, overflow, sticky holds, queues opening)."""

    kind: Literal["tick"] = "tick"


class Escalate(_Command):
    """SLA warnings and breaches: {conversation id: queue to move it to, or null to raise its priority}."""

    kind: Literal["escalate"] = "escalate"
    escalations: Annotated[dict[Ref, Ref | None], Field(max_length=10_000)]


RoutingCommand = Annotated[
    SetPresence | Accept | Decline | Claim | Transfer | Resolve | Tick | Escalate, Field(discriminator="kind")
]
_COMMAND: TypeAdapter[RoutingCommand] = TypeAdapter(RoutingCommand)
KINDS = frozenset(c.model_fields["kind"].default for c in get_args(get_args(RoutingCommand)[0]))


class InvalidCommandRecord(InvalidEvent):
    """A record on the command log that can never be applied: dead-lettered with the reason."""


@dataclass(frozen=True, slots=True)
class Command:
    """One command for one tenant, with the id that makes it idempotent."""

    id: str
    tenant: str
    body: RoutingCommand

    @property
    def kind(self) -> str:
        return self.body.kind

    @classmethod
    def of(cls, tenant: str, body: RoutingCommand, idempotency_key: str | None = None) -> Command:
        # a client's key names one command per tenant; without one every submission is new
        ident = uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant}\x1f{idempotency_key}") if idempotency_key else uuid.uuid4()
        return cls(str(ident), tenant, body)

    @classmethod
    def new(cls, tenant: str, kind: str, idempotency_key: str | None = None, **args: Any) -> Command:
        """From a kind and its arguments (``ValidationError`` if they do not make that command)."""
        return cls.of(tenant, _COMMAND.validate_python({"kind": kind, **args}), idempotency_key)

    def encode(self) -> bytes:
        args = self.body.model_dump(mode="json", exclude={"kind"})
        for name in ADDED_IN_VERSION_1:  # absent when unused, so a router of the release before reads it too
            if args.get(name, ...) is None:
                del args[name]
        return orjson.dumps(
            {"schema_version": SCHEMA_VERSION, "id": self.id, "tenant": self.tenant, "kind": self.kind, "args": args}
        )

    def record(self, topics: Topics) -> Outgoing:
        # keyed by tenant like the tenant's events: same partition number, same owner
        return Outgoing(topics.routing_commands, self.encode(), key=self.tenant.encode())

    @classmethod
    def decode(cls, raw: bytes) -> Command:
        envelope = json_object(raw, InvalidCommandRecord)
        version = envelope.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise UnsupportedSchemaVersion(f"unsupported schema_version {version!r}")
        ident, tenant, kind, args = (
            envelope.get("id"),
            envelope.get("tenant"),
            envelope.get("kind"),
            envelope.get("args", {}),
        )
        if not (isinstance(ident, str) and 0 < len(ident) <= 64 and isinstance(tenant, str) and tenant):
            raise InvalidCommandRecord("id and tenant must be non-empty strings")
        if kind not in KINDS:
            raise InvalidCommandRecord(f"unknown kind {kind!r}")
        if not isinstance(args, dict):
            raise InvalidCommandRecord(f"{kind}: args must be an object")
        try:
            body = _COMMAND.validate_python({**args, "kind": kind})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or kind}: {e['msg']}" for e in exc.errors()[:5])
            raise InvalidCommandRecord(f"{kind}: {problems}") from exc
        return cls(ident, tenant, body)
