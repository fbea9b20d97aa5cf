"""One contract, two databases: the repository on SQLite (embedded) and on PostgreSQL (production)."""

from __future__ import annotations

import asyncio
import gc
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import seed_demo
from services.router.adapters.db.unit_of_work import SqlStore, SqlUnitOfWork
from services.router.adapters.views import queries
from services.router.domain.model import Assignment, Presence
from services.router.domain.routing import restore
from services.router.domain.routing.decisions import Assigned
from services.router.handlers import routing_owner
from services.router.handlers.ports.command_outcomes import AlreadyApplied, Applied
from services.router.handlers.ports.connections import NewConnection
from services.router.handlers.ports.conversations import ConversationOpenedMeanwhile, WantedConversation
from services.router.handlers.ports.deadletters import DeadLetter
from services.router.handlers.ports.records import (
    AgentFacts,
    IdentityKey,
    NewCustomer,
    NewIdentity,
    NewMessage,
    OpenConversation,
)
from services.router.handlers.routing_owner import RoutingStates
from shared.bus import Outgoing
from shared.failures import is_retriable
from shared.ids import new_id
from shared.topics import Topics
from tests.conftest import random_name

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
async def tenant(repo: SqlStore) -> str:
    name = random_name("tn")
    await seed_demo(repo.db, NOW, tenant_id=name)
    return name


def new_customer(tenant: str, value: str) -> NewCustomer:
    return NewCustomer(tenant_id=tenant, kind="phone", value=value, verified=True, name="Sam")


async def create_customers(u: SqlUnitOfWork, new: list[NewCustomer]) -> dict[IdentityKey, str]:
    """Fixture: one customer per new identity, as the context stage creates them."""
    ids = {(n.tenant_id, n.kind, n.value): new_id() for n in new}
    await u.customers.insert_customers({ids[(n.tenant_id, n.kind, n.value)]: n for n in new}, NOW)
    await u.customers.attach_identities(
        [NewIdentity(n.tenant_id, ids[(n.tenant_id, n.kind, n.value)], n.kind, n.value, n.verified) for n in new], NOW
    )
    return await u.customers.customers_by_identity(ids)


async def open_missing(
    u: SqlUnitOfWork, wanted: dict[str, WantedConversation], now: datetime
) -> dict[str, OpenConversation]:
    """Fixture: the customers' open conversations, those missing planned and written (unplaced)."""
    plan = await u.conversations.plan_conversations(wanted, now)
    await u.conversations.insert_conversations(plan.new, {})
    return plan.open


async def open_conversation(u: SqlUnitOfWork, tenant: str, phone: str, channel: str) -> OpenConversation:
    """Fixture: a new customer with ``phone`` and the conversation the customer opens on ``channel``."""
    owners = await create_customers(u, [new_customer(tenant, phone)])
    customer_id = next(iter(owners.values()))
    convs = await open_missing(u, {customer_id: WantedConversation(tenant, channel)}, NOW)
    return convs[customer_id]


async def test_an_identity_belongs_to_exactly_one_customer_even_when_attached_concurrently(
    repo: SqlStore, tenant: str
) -> None:
    """The unique index on identities decides: of four customers racing for one phone number, one owns it."""
    key = (tenant, "phone", "+14155550100")

    async def attach() -> str:
        async with repo.unit() as u:
            mine = new_id()
            await u.customers.insert_customers({mine: new_customer(tenant, key[2])}, NOW)
            await u.customers.attach_identities([NewIdentity(tenant, mine, "phone", key[2], True)], NOW)
            return (await u.customers.customers_by_identity([key]))[key]

    owners = await asyncio.gather(*(attach() for _ in range(4)))
    async with repo.unit() as u:
        owner = (await u.customers.customers_by_identity([key]))[key]
    assert owner in owners
    async with repo.reader() as conn:
        i = t.identities.c
        rows = (await conn.execute(select(i.customer_id).where(i.tenant_id == tenant, i.value == key[2]))).all()
    assert [r.customer_id for r in rows] == [owner]


async def test_one_open_conversation_per_customer_even_when_opened_concurrently(repo: SqlStore, tenant: str) -> None:
    """Four transactions plan a conversation for the same customer at once: one writes it; the others are
    told to take their work again (retriable) and then find that one."""
    async with repo.unit() as u:
        owners = await create_customers(u, [new_customer(tenant, "+14155550101")])
    customer_id = next(iter(owners.values()))
    retried: list[ConversationOpenedMeanwhile] = []

    async def open_() -> str:
        while True:
            try:
                async with repo.unit() as u:
                    return (await open_missing(u, {customer_id: WantedConversation(tenant, "sms")}, NOW))[
                        customer_id
                    ].id
            except ConversationOpenedMeanwhile as exc:
                assert is_retriable(exc)
                retried.append(exc)

    ids = await asyncio.gather(*(open_() for _ in range(4)))
    assert len(set(ids)) == 1
    async with repo.reader() as conn:
        stored = (
            await conn.execute(
                select(t.conversations.c.id).where(
                    t.conversations.c.tenant_id == tenant, t.conversations.c.customer_id == customer_id
                )
            )
        ).all()
    assert [r.id for r in stored] == ids[:1]


async def test_a_redelivered_event_id_is_known_and_stored_once(repo: SqlStore, tenant: str) -> None:
    async with repo.unit() as u:
        conv = await open_conversation(u, tenant, "+14155550102", "sms")
        message = NewMessage(
            new_id(),
            tenant,
            "evt-1",
            conv.id,
            conv.customer_id,
            "sms",
            "inbound",
            "SM1",
            "phone",
            None,
            "hi",
            None,
            NOW,
        )
        await u.conversations.insert_messages([message], NOW)
        await u.conversations.insert_messages([message], NOW)
        assert await u.conversations.known_event_ids([(tenant, "evt-1"), (tenant, "evt-2")]) == {(tenant, "evt-1")}
    async with repo.reader() as conn:
        found = await queries.conversation(conn, tenant, conv.id)
    assert found is not None and [m["text"] for m in found["messages"]] == ["hi"]
    assert found["messages"][0]["received_at"] == NOW  # aware UTC on both databases


async def test_a_conversation_cannot_hold_two_live_assignments(repo: SqlStore, tenant: str) -> None:
    async with repo.unit() as u:
        conv = await open_conversation(u, tenant, "+14155550103", "chat")
        rows = await u.routing.record_assignments(
            {tenant: [Assignment(conv.id, f"{tenant}-agent-ada", f"{tenant}-q-messaging", "chat", NOW)]}
        )
        assert rows[0]["seq"] > 0
    with pytest.raises(IntegrityError):
        async with repo.unit() as u:
            await u.routing.record_assignments(
                {tenant: [Assignment(conv.id, f"{tenant}-agent-grace", f"{tenant}-q-messaging", "chat", NOW)]}
            )


async def test_agent_load_counts_live_assignments_per_channel(repo: SqlStore, tenant: str) -> None:
    ada = f"{tenant}-agent-ada"
    async with repo.unit() as u:
        owners = await create_customers(u, [new_customer(tenant, f"+1415555020{i}") for i in range(3)])
        convs = await open_missing(u, {c: WantedConversation(tenant, "chat") for c in owners.values()}, NOW)
        await u.routing.record_assignments(
            {tenant: [Assignment(c.id, ada, f"{tenant}-q-messaging", "chat", NOW) for c in convs.values()]}
        )
        agents = {a.id: a for a in await u.routing.lock_agents(tenant)}
        engine, _ = await RoutingStates(Topics()).rebuild(u, tenant, NOW)
    assert engine.agent_load(ada) == {"chat": 3}
    # Ada (capacity 3 on chat) is full: a fourth chat waits, as Grace is away and Alan offline
    fourth = engine.arrive("fourth", "chat", {}, NOW.timestamp())
    assert not [d for d in fourth if isinstance(d, Assigned)]
    assert agents[f"{tenant}-agent-grace"].presence is Presence.AWAY


async def test_a_rebuild_restores_with_the_garbage_collector_paused(
    repo: SqlStore, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A takeover builds a few long-lived objects per open conversation: collections during it only walk them
    (a third of a 50,000-conversation takeover, docs/performance.md). Off while the state is restored, on after."""
    seen: list[bool] = []

    def restoring(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return restore.restored(*args, **kwargs)

    monkeypatch.setattr(routing_owner, "restored", restoring)
    async with repo.unit() as u:
        owners = await create_customers(u, [new_customer(tenant, f"+1415555040{i}") for i in range(3)])
        convs = await open_missing(u, {c: WantedConversation(tenant, "chat") for c in owners.values()}, NOW)
        engine, _ = await RoutingStates(Topics()).rebuild(u, tenant, NOW)
    assert seen == [False] and gc.isenabled()
    assert all(engine.work(c.id) is not None for c in convs.values())


async def test_open_conversations_for_routing_come_oldest_first_with_customer_attributes(
    repo: SqlStore, tenant: str
) -> None:
    opened: list[str] = []
    async with repo.unit() as u:
        owners = await create_customers(u, [new_customer(tenant, f"+1415555030{i}") for i in range(3)])
        # opened in the reverse order of creation, a second apart
        for i, cid in enumerate(reversed(list(owners.values()))):
            convs = await open_missing(u, {cid: WantedConversation(tenant, "chat")}, NOW + timedelta(seconds=i))
            opened.append(convs[cid].id)
        found = await u.routing.open_conversations_for_routing(tenant)
    assert [c.conversation_id for c in found] == opened
    assert all(c.attrs["tier"] == "standard" and c.agent_id is None for c in found)


async def test_the_routing_version_fences_cached_state(repo: SqlStore, tenant: str) -> None:
    async with repo.unit() as u:
        (before,) = (await u.routing.routing_versions([tenant])).values()
        await u.routing.bump_routing_version(tenant)
        ran: list[int] = []
        u.after_commit(lambda: ran.append(1))
    async with repo.unit() as u:
        assert await u.routing.routing_versions([tenant]) == {tenant: before + 1}
    assert ran == [1]
    rolled_back: list[int] = []
    with pytest.raises(RuntimeError):
        async with repo.unit() as u:
            u.after_commit(lambda: rolled_back.append(1))
            raise RuntimeError("boom")
    assert rolled_back == [], "nothing runs after a rollback"


async def test_outbox_rows_are_taken_once_in_order_and_back_if_the_taker_rolls_back(repo: SqlStore) -> None:
    topic = random_name("ob-")
    async with repo.unit() as u:
        await u.outbox.add([Outgoing(topic, b"a", b"k"), Outgoing(topic, b"b", None)], NOW)
    async with repo.unit() as u:
        await u.outbox.add([Outgoing(topic, b"c", None)], NOW)
    with pytest.raises(RuntimeError):  # a publish that fails: its transaction rolls back
        async with repo.unit() as u:
            assert [o.value for _, o in await u.outbox.take(10_000) if o.topic == topic] == [b"a", b"b", b"c"]
            raise RuntimeError("the bus is down")
    async with repo.unit() as u:
        taken = [(s, o) for s, o in await u.outbox.take(10_000) if o.topic == topic]
        assert [o.value for _, o in taken] == [b"a", b"b", b"c"]
        assert taken[0][1].key == b"k" and [s for s, _ in taken] == sorted(s for s, _ in taken)
    async with repo.unit() as u:
        assert not [o for _, o in await u.outbox.take(10_000) if o.topic == topic]


async def test_the_outbox_is_taken_oldest_first_up_to_the_limit(repo: SqlStore) -> None:
    prefix = random_name("lim-") + "."
    async with repo.unit() as u:
        await u.outbox.add([Outgoing(f"{prefix}t", bytes([n]), None) for n in range(5)], NOW)
    async with repo.unit() as u:
        assert [o.value for _, o in await u.outbox.take(3, prefix)] == [bytes([0]), bytes([1]), bytes([2])]
        assert [o.value for _, o in await u.outbox.take(3, prefix)] == [bytes([3]), bytes([4])]


async def test_a_relay_takes_only_its_deployments_topics(repo: SqlStore) -> None:
    base = random_name("dep-")
    mine, theirs = f"{base}_a.", random_name("dep-") + "."
    like = f"{base}Za."  # what the prefix's "_" would match as a LIKE wildcard: another deployment's
    async with repo.unit() as u:
        await u.outbox.add(
            [Outgoing(f"{theirs}routing.assignments", b"theirs", None), Outgoing(f"{like}x", b"like", None)], NOW
        )
        await u.outbox.add([Outgoing(f"{mine}routing.assignments", b"mine", None)], NOW)
    with pytest.raises(RuntimeError):
        async with repo.unit() as u:
            assert [o.value for _, o in await u.outbox.take(10_000, mine)] == [b"mine"]
            assert [o.value for _, o in await u.outbox.take(10_000, theirs)] == [b"theirs"]
            raise RuntimeError("put back")
    async with repo.unit() as u:
        both = await u.outbox.take(10_000, base)  # a shorter prefix: both deployments whose names start so
        assert sorted(o.value for _, o in both) == [b"like", b"mine"]
        assert [o.value for _, o in await u.outbox.take(10_000, theirs)] == [b"theirs"]


async def test_presence_is_tenant_scoped_and_keeps_its_reason(repo: SqlStore, tenant: str) -> None:
    grace = f"{tenant}-agent-grace"
    async with repo.unit() as u:
        await u.routing.store_agents({tenant: [AgentFacts(grace, Presence.ONLINE, NOW, "supervisor", NOW)]})
        await u.routing.store_agents({"someone-else": [AgentFacts(grace, Presence.OFFLINE, None, "agent", NOW)]})
        # a later pass that only moves the last assignment keeps the reason of the last presence change
        await u.routing.store_agents({tenant: [AgentFacts(grace, Presence.ONLINE, NOW + timedelta(seconds=5))]})
        agents = {a.id: a for a in await u.routing.lock_agents(tenant)}
    assert agents[grace].presence is Presence.ONLINE
    assert agents[grace].last_assigned_at == NOW + timedelta(seconds=5)
    async with repo.reader() as conn:
        a = t.agents.c
        row = (await conn.execute(select(a.presence_reason, a.presence_changed_at).where(a.id == grace))).one()
    assert (row.presence_reason, row.presence_changed_at) == ("supervisor", NOW)


async def test_routing_facts_and_counters_come_back_exactly(repo: SqlStore, tenant: str) -> None:
    fact = {
        "v": 1,
        "queue": f"{tenant}-q-general",
        "channel": "chat",
        "enqueued_at": 1795000000.123456,
        "virtual_time": 1794999099.1000001,  # not a round number: floats survive the store exactly
        "seq": 41,
        "language": None,
        "skills": {"billing": 2},
        "previous_agent": None,
        "reserved_until": -1.0,
        "declined_by": {f"{tenant}-agent-ada": 1795000600.5},
        "declines": 1,
        "overflowed": True,
        "acknowledged": False,
    }
    async with repo.unit() as u:
        conv = await open_conversation(u, tenant, "+14155550300", "chat")
        await u.routing.store_facts({(tenant, conv.id): fact})
        await u.routing.bump_routing_version(tenant, {"next_seq": 42, "rr_cursor": {"q": "a"}})
    async with repo.unit() as u:
        stored = {c.conversation_id: c.fact for c in await u.routing.open_conversations_for_routing(tenant)}
        assert stored[conv.id] == fact
        assert await u.routing.routing_state(tenant) == {"next_seq": 42, "rr_cursor": {"q": "a"}}
        await u.routing.store_facts({(tenant, conv.id): None})
    async with repo.unit() as u:
        stored = {c.conversation_id: c.fact for c in await u.routing.open_conversations_for_routing(tenant)}
        assert stored[conv.id] is None


async def test_many_tenants_versions_and_counters_are_read_and_written_together(repo: SqlStore, tenant: str) -> None:
    other = random_name("tn")
    await seed_demo(repo.db, NOW, tenant_id=other)
    async with repo.unit() as u:
        before = await u.routing.routing_versions([other, tenant, "no-such-tenant"])
        assert set(before) == {tenant, other, "no-such-tenant"} and before["no-such-tenant"] == 0
        await u.routing.store_routing_states({tenant: {"next_seq": 7, "rr_cursor": {}}, other: {"next_seq": 9}})
    async with repo.unit() as u:
        after = await u.routing.routing_versions([tenant, other])
        assert after == {tenant: before[tenant] + 1, other: before[other] + 1}
        assert await u.routing.routing_state(tenant) == {"next_seq": 7, "rr_cursor": {}}
        assert await u.routing.routing_state(other) == {"next_seq": 9}


async def test_handle_times_are_each_tenants_own(repo: SqlStore, tenant: str) -> None:
    ada = f"{tenant}-agent-ada"
    async with repo.unit() as u:
        assert await u.routing.average_handle_s([tenant]) == {}  # nothing finished yet
        owners = await create_customers(u, [new_customer(tenant, f"+1415555040{i}") for i in range(2)])
        convs = await open_missing(u, {c: WantedConversation(tenant, "chat") for c in owners.values()}, NOW)
        ids = [c.id for c in convs.values()]
        await u.routing.record_assignments(
            {tenant: [Assignment(i, ada, f"{tenant}-q-messaging", "chat", NOW) for i in ids]}
        )
        await u.routing.end_assignments([(tenant, i) for i in ids[:1]], NOW + timedelta(seconds=60))
        await u.routing.end_assignments([(tenant, i) for i in ids[1:]], NOW + timedelta(seconds=180))
        found = await u.routing.average_handle_s([tenant, "no-such-tenant"])
    assert found == {tenant: pytest.approx(120.0)}


async def test_connections_tell_who_is_disconnected_since_when(repo: SqlStore, tenant: str) -> None:
    ada, grace = f"{tenant}-agent-ada", f"{tenant}-agent-grace"
    replica_a, replica_b = random_name("ra-"), random_name("rb-")
    later = NOW + timedelta(seconds=30)
    first = new_id()
    async with repo.unit() as u:
        await u.connections.open(NewConnection(first, tenant, ada, replica_a, "sse"), NOW)
        await u.connections.open(NewConnection(new_id(), tenant, ada, replica_b, "websocket"), NOW)
        await u.connections.open(NewConnection(new_id(), tenant, grace, replica_b, "sse"), NOW)
        await u.connections.close(tenant, first, NOW + timedelta(seconds=1))
        assert await u.connections.refresh(replica_a, later) == 0  # its only connection is closed
    async with repo.unit() as u:
        # replica b went silent at NOW: its connections count as dropped then; Ada's last was seen at NOW + 1
        mine = {(d.agent_id, d.lost_at) for d in await u.connections.disconnected(later) if d.tenant_id == tenant}
        assert mine == {(ada, NOW + timedelta(seconds=1)), (grace, NOW)}
        assert await u.connections.live(tenant, grace, NOW)
        assert not await u.connections.live(tenant, grace, later)
        assert await u.connections.refresh(replica_b, later) == 2
        assert not [d for d in await u.connections.disconnected(later) if d.tenant_id == tenant]
        await u.connections.prune(later + timedelta(days=1))
        assert not await u.connections.live(tenant, ada, NOW)


async def test_a_command_outcome_is_recorded_once_and_forgotten_after_its_day(repo: SqlStore, tenant: str) -> None:
    command_id = new_id()
    async with repo.unit() as u:
        assert await u.outcomes.get(tenant, command_id) is None
        await u.outcomes.record(command_id, tenant, "accept", (409, {"error": "InvalidCommand"}), NOW)
    with pytest.raises(AlreadyApplied):
        async with repo.unit() as u:
            await u.outcomes.record(command_id, tenant, "accept", (200, {"events": 1}), NOW)
    async with repo.reading() as r:
        assert await r.outcomes.get(tenant, command_id) == (409, {"error": "InvalidCommand"}), (
            "the first outcome stands"
        )
    async with repo.unit() as u:
        await u.outcomes.forget_before(NOW)  # kept: not older than the cutoff
        assert await u.outcomes.get(tenant, command_id) is not None
        await u.outcomes.forget_before(NOW + timedelta(seconds=1))
        assert await u.outcomes.get(tenant, command_id) is None


async def test_a_detected_language_never_replaces_one_already_set(repo: SqlStore, tenant: str) -> None:
    async with repo.unit() as u:
        owners = await create_customers(u, [new_customer(tenant, f"+1415555040{i}") for i in range(3)])
        sam, kim, lee = owners.values()
        await u.customers.set_detected_languages({(tenant, sam): ("fr", 0.9), (tenant, kim): ("de", 0.8)}, NOW)
    async with repo.unit() as u:  # a later batch: Sam's language is set, Lee's not yet
        await u.customers.set_detected_languages(
            {(tenant, sam): ("es", 0.99), (tenant, lee): ("it", 0.7)}, NOW + timedelta(1)
        )
    async with repo.db.read() as conn:
        c = t.customers.c
        rows = (await conn.execute(select(c.id, c.language, c.language_confidence).where(c.tenant_id == tenant))).all()
    assert {r.id: (r.language, r.language_confidence) for r in rows} == {
        sam: ("fr", 0.9),
        kim: ("de", 0.8),
        lee: ("it", 0.7),
    }


async def test_what_an_app_vouches_for_replaces_only_what_it_names(repo: SqlStore, tenant: str) -> None:
    async with repo.unit() as u:
        owners = await create_customers(u, [new_customer(tenant, f"+1415555050{i}") for i in range(3)])
        ann, bob, cid = owners.values()
        await u.customers.apply_verified_profile(
            {(tenant, ann): {"tier": "silver", "attributes": {"plan": "basic"}}}, NOW
        )
    async with repo.unit() as u:  # one batch: Ann's tier and attributes, Bob's name, nothing for Cid
        await u.customers.apply_verified_profile(
            {
                (tenant, ann): {"tier": "gold", "attributes": {"plan": "pro"}},
                (tenant, bob): {"name": "Bob"},
                (tenant, cid): {},
            },
            NOW,
        )
        with pytest.raises(ValueError, match="consent"):
            await u.customers.apply_verified_profile({(tenant, cid): {"consent": {}}}, NOW)
    async with repo.db.read() as conn:
        c = t.customers.c
        rows = (await conn.execute(select(c.id, c.name, c.tier, c.attributes).where(c.tenant_id == tenant))).all()
    assert {r.id: (r.name, r.tier, r.attributes) for r in rows} == {
        ann: ("Sam", "gold", {"plan": "pro"}),  # all three were created named Sam
        bob: ("Bob", "standard", {}),
        cid: ("Sam", "standard", {}),
    }


async def test_outcomes_recorded_together_are_all_or_nothing(repo: SqlStore, tenant: str) -> None:
    first, second, third = new_id(), new_id(), new_id()
    async with repo.unit() as u:
        await u.outcomes.record_many(
            [Applied(first, tenant, "accept", (200, {"events": 1})), Applied(second, tenant, "resolve", (200, {}))],
            NOW,
        )
    async with repo.reading() as r:
        assert await r.outcomes.get_many([(tenant, first), (tenant, second), (tenant, third)]) == {
            first: (200, {"events": 1}),
            second: (200, {}),
        }
    with pytest.raises(AlreadyApplied):  # one of them was applied already: none of them is recorded
        async with repo.unit() as u:
            await u.outcomes.record_many(
                [Applied(third, tenant, "accept", (200, {})), Applied(second, tenant, "resolve", (409, {}))], NOW
            )
    async with repo.reading() as r:
        assert await r.outcomes.get(tenant, third) is None
        assert await r.outcomes.get(tenant, second) == (200, {}), "the first outcome stands"


def dead_letter(tenant: str, dl_topic: str, dl_offset: int, source_offset: int, partition: int = 0) -> DeadLetter:
    return DeadLetter(
        id=new_id(),
        tenant_id=tenant,
        topic="conversation.events",
        partition=partition,
        offset=source_offset,
        key=tenant.encode(),
        value=b'{"tenant": "x"}',
        reason="DataError [22021]: invalid byte sequence",
        kind="DataError",
        dl_topic=dl_topic,
        dl_partition=0,
        dl_offset=dl_offset,
    )


async def test_a_dead_letter_is_stored_once_per_place_and_per_source_until_redriven(
    repo: SqlStore, tenant: str
) -> None:
    dl_topic = random_name("dl-")
    first = dead_letter(tenant, dl_topic, dl_offset=0, source_offset=7)
    async with repo.unit() as u:
        assert await u.deadletters.add([first], NOW) == 1
        # the same dead-letter record redelivered, and the same source record dead-lettered again
        assert await u.deadletters.add([dead_letter(tenant, dl_topic, dl_offset=0, source_offset=7)], NOW) == 0
        assert await u.deadletters.add([dead_letter(tenant, dl_topic, dl_offset=1, source_offset=7)], NOW) == 0
    async with repo.reading() as r:
        stored = await r.deadletters.one(tenant, first.id)
        assert stored is not None and stored["value"] == first.value and stored["redrives"] == 0
        assert await r.deadletters.one("another-tenant", first.id) is None
    async with repo.unit() as u:
        await u.deadletters.mark_redriven(tenant, first.id, NOW)
        # once redriven, the same source record failing again is a new dead letter
        assert await u.deadletters.add([dead_letter(tenant, dl_topic, dl_offset=2, source_offset=7)], NOW) == 1
    async with repo.reading() as r:
        again = await r.deadletters.one(tenant, first.id)
        assert again is not None and again["redrives"] == 1 and again["redriven_at"] == NOW
    async with repo.unit() as u:
        await u.deadletters.forget_before(NOW + timedelta(seconds=1))
    async with repo.reading() as r:
        assert await r.deadletters.one(tenant, first.id) is None
