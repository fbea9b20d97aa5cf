"""Dead letters, kept where an admin can see them and redrive them after a fix.

Every consumer (router and connectors) sends a record it can never apply to the dead-letter topic with the
reason in headers (``shared/bus.deadletter``). The router's own consumer of that topic stores each one in the
``deadletters`` table under the tenant it belongs to, so that ``GET /v1/deadletters`` lists them per tenant and
``POST /v1/deadletters/{id}/redrive`` publishes the original bytes, with the original key, back to the topic
they came from. Redriving is safe: every event and command carries its own id and is deduplicated."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import orjson

from services.router.domain.errors import InvalidCommand, NotFound
from services.router.handlers.ports import Clock, Store
from services.router.handlers.ports.deadletters import DeadLetter
from shared.bus import Bus, Outgoing, Record
from shared.ids import new_id
from shared.topics import Topics

log = logging.getLogger(__name__)


def tenant_of(record_value: bytes, key: bytes | None, source_topic: str, keyed_by_tenant: set[str]) -> str:
    """The tenant a dead letter belongs to: the ``tenant`` of its JSON object, else its key where the source
    topic is keyed by tenant (events, routing commands); "" when neither tells (kept, but listed to no one)."""
    try:
        data = orjson.loads(record_value)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("tenant"), str):
        return str(data["tenant"])[:64]
    if key is not None and source_topic in keyed_by_tenant:
        return key.decode(errors="replace")[:64]
    return ""


def _header(record: Record, name: str, default: str = "") -> str:
    raw = record.header(name)
    return raw.decode(errors="replace") if raw is not None else default


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


@dataclass(eq=False)
class DeadLetters:
    repo: Store
    bus: Bus
    topics: Topics
    clock: Clock

    async def handle(self, records: Sequence[Record]) -> None:
        """The dead-letter topic's consumer: one row per dead letter, under its tenant."""
        keyed_by_tenant = {self.topics.events, self.topics.routing_commands}
        rows = []
        for r in records:
            source = _header(r, "source-topic", "unknown")
            rows.append(
                DeadLetter(
                    id=new_id(),
                    tenant_id=tenant_of(r.value, r.key, source, keyed_by_tenant),
                    topic=source[:255],
                    partition=_int(_header(r, "source-partition")),
                    offset=_int(_header(r, "source-offset")),
                    key=r.key,
                    value=r.value,
                    reason=_header(r, "reason", "unknown")[:1000],
                    kind=_header(r, "kind", "invalid")[:100],
                    dl_topic=r.topic,
                    dl_partition=r.partition,
                    dl_offset=r.offset,
                )
            )
        async with self.repo.unit() as u:
            await u.deadletters.add(rows, self.clock())

    async def redrive(self, tenant_id: str, deadletter_id: str) -> dict[str, object]:
        """Publish the original record again to the topic it came from; 404 for another tenant's id, 409 for a
        dead letter that came from a webhook (no topic to go back to: the payload is there to be read)."""
        async with self.repo.reading() as r:
            found = await r.deadletters.one(tenant_id, deadletter_id)
        if found is None:
            raise NotFound(f"no dead letter {deadletter_id}")
        if found["topic"] not in self.topics.all():
            raise InvalidCommand(f"dead letter {deadletter_id} came from {found['topic']!r}, not a topic")
        await self.bus.publish([Outgoing(found["topic"], found["value"], key=found["key"])])
        now = self.clock()
        async with self.repo.unit() as u:
            await u.deadletters.mark_redriven(tenant_id, deadletter_id, now)
        log.info("deadletter.redriven", extra={"tenant": tenant_id, "deadletter_id": deadletter_id})
        return {"id": deadletter_id, "topic": found["topic"], "redriven_at": now, "redrives": found["redrives"] + 1}

    async def forget_old(self, retention: timedelta) -> int:
        async with self.repo.unit() as u:
            return await u.deadletters.forget_before(self.clock() - retention)
