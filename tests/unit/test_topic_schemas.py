"""The agent feed and customer event schemas: golden samples both ways, explicit version refusal, and the
producers' output is exactly the samples (the JSON consumers read today, plus ``schema_version``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, MagicMock

import orjson
import pytest

from services.router.domain.webhook_retry import RetryPolicy
from services.router.handlers.agent_feed import feed_event, feed_record, new_agent_event
from services.router.handlers.customer_commands import CustomerCommands
from services.router.handlers.ports.webhook_deliveries import NewDelivery
from services.router.handlers.webhook_deliveries import WebhookDeliveries
from shared import customer_events, feed_events
from shared.bus import Outgoing, Record
from shared.consumer_loop import apply_isolating_poison
from shared.events import InvalidEvent, UnsupportedSchemaVersion
from shared.topics import Topics

GOLDEN = Path(__file__).parent / "golden"
FEED = sorted((GOLDEN / "feed").glob("*.json"))
CUSTOMER = sorted((GOLDEN / "customer").glob("*.json"))
SCHEMAS = [(p, feed_events) for p in FEED] + [(p, customer_events) for p in CUSTOMER]
TOPICS = Topics("t.")


def _name(value: object) -> str:
    return value.stem if isinstance(value, Path) else str(getattr(value, "__name__", value)).rsplit(".", 1)[-1]


def _doc(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(path.read_bytes())
    return doc


@pytest.mark.parametrize(("path", "schema"), SCHEMAS, ids=_name)
def test_golden_sample_decodes_and_reencodes_to_the_same_json(path: Path, schema: Any) -> None:
    event = schema.decode(path.read_bytes())
    assert schema.decode(schema.encode(event)) == event
    # the same document, value for value (instants keep their "+00:00"): nothing dropped, nothing invented
    assert orjson.loads(schema.encode(event)) == _doc(path)


def test_feed_samples_cover_every_type_and_a_blanked_event() -> None:
    events = [feed_events.decode(p.read_bytes()) for p in FEED]
    assert {e.type for e in events} == set(feed_events.TYPES)
    assert any(isinstance(e, feed_events.Blanked) for e in events)


def test_customer_samples_cover_every_type() -> None:
    kinds = {customer_events.decode(p.read_bytes()).type for p in CUSTOMER}
    assert kinds == {"customer.merged", "customer.unmerged", "customer.erased"}


@pytest.mark.parametrize("version", [None, 0, 2, "1", 99])
@pytest.mark.parametrize(("path", "schema"), [(FEED[0], feed_events), (CUSTOMER[0], customer_events)], ids=_name)
def test_unknown_schema_version_is_refused_explicitly(path: Path, schema: Any, version: object) -> None:
    doc = _doc(path)
    doc["schema_version"] = version
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version"):
        schema.decode(orjson.dumps(doc))


@pytest.mark.parametrize(("path", "schema"), SCHEMAS, ids=_name)
def test_a_record_written_before_schema_version_existed_reads_as_version_1(path: Path, schema: Any) -> None:
    doc = _doc(path)
    del doc["schema_version"]
    assert schema.decode(orjson.dumps(doc)) == schema.decode(path.read_bytes())


@pytest.mark.parametrize(
    ("sample", "mutate", "reason"),
    [
        ("offer", lambda d: d.pop("expires_at"), "expires_at"),  # not read as a blanked event
        ("offer", lambda d: d.update(channel="pigeon"), "channel"),
        ("offer", lambda d: d.update(unexpected=1), "unexpected"),
        ("offer", lambda d: d.update(type="gossip"), "gossip"),
        ("offer", lambda d: d.update(seq=0), "seq"),
        ("message", lambda d: d.update(direction="sideways"), "direction"),
        ("sla.warning", lambda d: d.update(stage="breach"), "stage"),
        ("sla.breach", lambda d: d.update(kind="lunch"), "kind"),
        ("message_erased", lambda d: d.update(tenant="bad tenant!"), "tenant"),
    ],
)
def test_invalid_feed_event_is_refused_with_the_field_in_the_reason(sample: str, mutate: Any, reason: str) -> None:
    doc = _doc(GOLDEN / "feed" / f"{sample}.json")
    mutate(doc)
    with pytest.raises(InvalidEvent) as err:
        feed_events.decode(orjson.dumps(doc))
    assert reason in err.value.reason


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(type="customer.renamed"), "customer.renamed"),
        (lambda d: d.update(customer_ids=[]), "customer_ids"),
        (lambda d: d.pop("attachments"), "attachments"),
        (lambda d: d.update(time="yesterday"), "time"),
    ],
)
def test_invalid_customer_event_is_refused_with_the_field_in_the_reason(mutate: Any, reason: str) -> None:
    doc = _doc(GOLDEN / "customer" / "customer.erased.json")
    mutate(doc)
    with pytest.raises(InvalidEvent) as err:
        customer_events.decode(orjson.dumps(doc))
    assert reason in err.value.reason


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b"null", b'"text"'])
def test_non_object_payloads_are_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        feed_events.decode(raw)
    with pytest.raises(InvalidEvent):
        customer_events.decode(raw)


# -- producers --------------------------------------------------------------------------------------------------
def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# What each producer passes to new_agent_event (Python values, as routing_owner, ingest, slas and the voice
# details do), per golden sample; the envelope (id, seq, agent, conversation, time) is taken from the sample.
_VOICE_CALL = {
    "task": "call",
    "call_sid": "CA8f1c2d3e4b5a69788796a5b4c3d2e1f0",
    "phone": "+4915112345678",
    "voice_endpoint": "client:5d2c9a4e-8f1b-4c3d-a6e7-1b2c3d4e5f60",
}
_VOICE_CALLBACK = {
    "task": "callback",
    "request": "Callback requested between 14:00 and 16:00",
    "phone": None,
    "voice_endpoint": "+493012345678",
}
PRODUCED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "offer": (
        {"queue_id": "demo-q-messaging", "channel": "chat", "expires_at": _at("2026-11-23T09:15:32.481207+00:00")},
        {},
    ),
    "offer_voice_call": (
        {"queue_id": "demo-q-voice", "channel": "voice", "expires_at": _at("2026-11-23T09:20:20+00:00")},
        _VOICE_CALL,
    ),
    "assignment": (
        {
            "queue_id": "demo-q-messaging",
            "channel": "chat",
            "assigned_at": _at("2026-11-23T09:15:09.100000+00:00"),
            "reason": "accepted",
        },
        {},
    ),
    "assignment_caused": (
        {
            "queue_id": "demo-q-messaging",
            "channel": "chat",
            "assigned_at": _at("2026-11-23T09:15:09.100000+00:00"),
            "reason": "routed",
            "event_id": "whatsapp:wamid.HBgLMTQxNTU1NTAxMjMVAgASGBQzQUZCRjA",
            "received_at": _at("2026-11-23T09:15:09.061532+00:00"),
        },
        {},
    ),
    "assignment_voice_callback": (
        {
            "queue_id": "demo-q-voice",
            "channel": "voice",
            "assigned_at": _at("2026-11-23T11:02:45.730001+00:00"),
            "reason": "routed",
        },
        _VOICE_CALLBACK,
    ),
    "unassignment": ({"reason": "resolved"}, {}),
    "message": (
        {
            "message_id": "6d7e8f9a-0b1c-4d2e-8f3a-4b5c6d7e8f9a",
            "channel": "email",
            "direction": "inbound",
            "text": "Hello,\n\nthe parcel arrived damaged. Photos attached.\n\nSam",
            "subject": "Re: Order #1234",
        },
        {},
    ),
    "message_chat": (
        {
            "message_id": "8b9c0d1e-2f3a-4b4c-8d5e-6f7a8b9c0d1e",
            "channel": "chat",
            "direction": "inbound",
            "text": "are you there?",
            "subject": None,
        },
        {},
    ),
    "message_caused": (
        {
            "message_id": "8b9c0d1e-2f3a-4b4c-8d5e-6f7a8b9c0d1e",
            "channel": "chat",
            "direction": "inbound",
            "text": "are you there?",
            "subject": None,
            "event_id": "chat:8b9c0d1e-2f3a",
            "received_at": _at("2026-11-23T09:17:04.981210+00:00"),
        },
        {},
    ),
    "sla.warning": (
        {
            "kind": "first_response",
            "stage": "warning",
            "due_at": _at("2026-11-23T13:16:40.912000+00:00"),
            "queue_id": "demo-q-email",
        },
        {},
    ),
    "sla.breach": (
        {"kind": "resolution", "stage": "breach", "due_at": _at("2026-11-24T09:15:02+00:00"), "queue_id": None},
        {},
    ),
    "presence": (
        {"agent": "5d2c9a4e-8f1b-4c3d-a6e7-1b2c3d4e5f60", "presence": "away", "reason": "missed_offer"},
        {},
    ),
    "presence_supervisors": (
        {"agent": "5d2c9a4e-8f1b-4c3d-a6e7-1b2c3d4e5f60", "presence": "away", "reason": "disconnected"},
        {},
    ),
}


def _stored_row(sample: dict[str, Any], data: dict[str, Any], voice: dict[str, Any]) -> dict[str, Any]:
    """The row as add_agent_events returns it: new_agent_event's, voice details added, with its seq."""
    row = new_agent_event(
        sample["tenant"], sample["agent_id"], sample["type"], sample["conversation_id"], _at(sample["at"]), **data
    )
    row["data"].update(voice)
    return {**row, "id": sample["id"], "seq": sample["seq"]}


@pytest.mark.parametrize("name", sorted(PRODUCED))
def test_feed_producers_write_exactly_the_golden_sample(name: str) -> None:
    sample = _doc(GOLDEN / "feed" / f"{name}.json")
    row = _stored_row(sample, *PRODUCED[name])
    record = feed_record(TOPICS.assignments, sample["tenant"], row)
    assert record.topic == TOPICS.assignments and record.key == sample["agent_id"].encode()
    assert orjson.loads(record.value) == sample
    assert feed_events.decode(record.value) == feed_events.decode(orjson.dumps(sample))
    # the live feeds' replay from the database sends the same object
    assert orjson.loads(orjson.dumps(feed_event(sample["tenant"], row))) == sample


def test_feed_producers_cover_every_golden_sample_but_the_blanked_one() -> None:
    assert set(PRODUCED) == {p.stem for p in FEED} - {"message_erased"}


def test_a_replayed_event_of_an_erased_conversation_is_its_envelope_only() -> None:
    sample = _doc(GOLDEN / "feed" / "message_erased.json")
    row = {k: sample[k] for k in ("seq", "id", "agent_id", "type", "conversation_id")}
    row |= {"at": _at(sample["at"]), "data": {}}  # adapters/db/erasure.py blanks data
    assert feed_event(sample["tenant"], row) == sample


def test_a_feed_row_that_does_not_fit_the_schema_is_refused_at_the_producer() -> None:
    sample = _doc(GOLDEN / "feed" / "unassignment.json")
    row = _stored_row(sample, {"reason": "resolved", "mood": "grumpy"}, {})
    with pytest.raises(InvalidEvent, match="mood"):
        feed_record(TOPICS.assignments, sample["tenant"], row)


def _customer_commands(now: datetime, unit: Any = None) -> CustomerCommands:
    repo = MagicMock()
    repo.unit.return_value.__aenter__.return_value = unit
    return CustomerCommands(repo, AsyncMock(), lambda: now, TOPICS, b"key")


@pytest.mark.parametrize("kind", ["customer.merged", "customer.unmerged"])
def test_merge_events_are_produced_exactly_as_the_golden_sample(kind: str) -> None:
    sample = _doc(GOLDEN / "customer" / f"{kind}.json")
    now = _at(sample["time"])
    commands = _customer_commands(now)
    record = commands._event(
        kind, sample["tenant"], sample["merge_id"], sample["survivor_id"], sample["merged_id"], sample["actor"], now
    )
    assert record.topic == TOPICS.customers
    assert record.key == f"{sample['tenant']}\x1f{sample['survivor_id']}".encode()
    assert orjson.loads(record.value) == {**sample, "id": orjson.loads(record.value)["id"]}
    assert isinstance(customer_events.decode(record.value), customer_events.MERGE_EVENTS[kind])


async def test_erasure_is_announced_exactly_as_the_golden_sample() -> None:
    sample = _doc(GOLDEN / "customer" / "customer.erased.json")
    now = _at(sample["time"])
    unit = AsyncMock()  # the store's unit of work: what was erased, and the outbox the announcement goes to
    unit.customers.erase.return_value = {
        "customers": sample["customer_ids"],
        "attachments": sample["attachments"],
        "erased_at": now,
    }
    commands = _customer_commands(now, unit)
    await commands.erase(sample["tenant"], sample["customer_ids"][0], sample["actor"])
    published = [
        o for c in unit.mock_calls for a in c.args if isinstance(a, list) for o in a if isinstance(o, Outgoing)
    ]
    assert [o.topic for o in published] == [TOPICS.customers]
    value = orjson.loads(published[0].value)
    assert value == {**sample, "id": value["id"]}
    assert isinstance(customer_events.decode(published[0].value), customer_events.CustomerErased)


# -- consumers ---------------------------------------------------------------------------------------------------
async def test_webhooks_queue_each_valid_event_once_and_leave_an_invalid_one_to_the_dead_letter_split() -> None:
    queued: list[str] = []

    class Store:
        @asynccontextmanager
        async def unit(self) -> AsyncIterator[MagicMock]:
            u = MagicMock()

            async def add(deployment: str, rows: list[NewDelivery], now: datetime) -> int:
                queued.extend(r.event_id for r in rows)
                return len(rows)

            u.webhook_deliveries.add = add
            yield u

    store: Any = Store()
    hooks = WebhookDeliveries(
        store, lambda: datetime(2026, 11, 30), "t.g", ["http://hooks.test/a"], None, RetryPolicy(), timedelta(1)
    )
    values = [p.read_bytes() for p in FEED[:3]]
    values.insert(1, orjson.dumps({**_doc(FEED[0]), "schema_version": 2}))
    records = [Record(TOPICS.assignments, 0, n, b"agent", v) for n, v in enumerate(values)]
    bus = AsyncMock()
    await apply_isolating_poison(bus, records, hooks.accept, TOPICS.deadletter, "webhooks")
    assert sorted(queued) == sorted(_doc(p)["id"] for p in FEED[:3])  # none twice
    (dead,) = bus.publish.call_args.args[0]
    assert dead.topic == TOPICS.deadletter and dead.value == values[1]
    assert b"schema_version" in dict(dead.headers)["reason"]
