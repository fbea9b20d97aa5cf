"""What one batch costs PostgreSQL, counted by the database itself (``pg_stat_statements``, loaded by
deploy/local/services.sh): a batch of 500 messages from new customers, then a batch of 500 follow-ups in their
open conversations. A statement added back per message (a lookup, an update in a loop) multiplies a count by
the batch size and fails here; no timing is involved."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import RouterRuntime, build_router
from services.router.domain.model import Presence
from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.events import encode_event
from shared.routing_commands import Command, Resolve, SetPresence, Transfer
from shared.store import Database
from tests.conftest import Servers, random_name
from tests.support.commands import command_log, command_statuses
from tests.support.databases import create_database, drop_database
from tests.support.desks import online_agents
from tests.support.runtime import inbound, settings_for

BATCH = 500
TENANTS = 4
# Statements per batch, whatever its size and the number of tenants in it: each table read and written once
# for all of them (the tenants' locks, versions and counters included).
# New customers: each table read once (the erasures, the event ids, the identities) and written once (customers,
# identities, conversations with their SLA clocks, messages with the acknowledgements' and their "acknowledged"
# entries, the outbox), the relay's take, and the tenants' locks and routing versions. Nothing is read back that
# the batch wrote or knows: a customer it created has no conversations or profile to look up.
NEW_CUSTOMERS = 12
# The same, given to free agents: their assignments (written, read back for the feed), the agents' last pick,
# the feed events, and the "assigned" entries.
NEW_CUSTOMERS_ASSIGNED = NEW_CUSTOMERS + 6
# Follow-ups: the same reads (the customers read once, to resolve and to route them), the messages written, the
# conversations touched, the tenants' locks and routing versions, and who helped the waiting customers last.
FOLLOW_UPS = 12
# Agents' resolutions, every tenant's in one transaction and one statement per table for all of them, whatever
# the number of tenants: the conversations, assignments, clocks and surveys (their messages, timeline, outbox),
# the tenants' locks, versions and counters, the routing pass that hands freed capacity on, its feed, the
# outcomes, the relay's take (and a new connection's setup).
RESOLUTIONS = 25
PRESENCE_PER_TENANT = 15  # the agents read once, the presences written once, the routing pass, the feed
AGENTS = 40  # per tenant


@dataclass(frozen=True)
class Cost:
    statements: int  # SELECT, INSERT, UPDATE, DELETE (transaction control apart)
    inserted: int  # rows written by INSERT
    updated: int  # rows changed by UPDATE
    deleted: int
    by_statement: list[tuple[int, int, str]]  # calls, rows, query: what to look at when a bound breaks

    def report(self) -> str:
        return "\n".join(f"{calls:6d} calls {rows:7d} rows  {query[:150]}" for calls, rows, query in self.by_statement)


async def cost_of(db: Database, name: str) -> Cost:
    """What the database ``name`` ran since the last reset."""
    async with db.read() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT s.calls, s.rows, s.query FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                    "WHERE d.datname = :name AND s.query !~* '^\\s*(begin|commit|rollback|savepoint|release|set|show)'"
                    " AND s.query !~* 'pg_stat_statements' ORDER BY s.calls DESC"
                ),
                {"name": name},
            )
        ).all()
    by = [(int(r[0]), int(r[1]), " ".join(str(r[2]).split())) for r in rows]

    def rows_of(verb: str) -> int:
        return sum(r for _, r, q in by if q.lstrip("( ").upper().startswith(verb))

    return Cost(sum(c for c, _, _ in by), rows_of("INSERT"), rows_of("UPDATE"), rows_of("DELETE"), by)


async def reset(db: Database) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("SELECT pg_stat_statements_reset()"))


@pytest.fixture
async def router(servers: Servers, tmp_path: Path) -> AsyncIterator[tuple[RouterRuntime, str, list[str]]]:
    name = random_name("switchboard_cost_")
    url = await create_database(servers.database_url, name)
    # the clock-driven work (routing and SLA ticks, sweeps, presence) is not the batch's: kept out of the counts
    quiet = dict(routing_tick_s=3600, routing_sweep_s=3600, presence_heartbeat_s=3600, outbox_relay_s=3600)
    settings = settings_for("production", tmp_path, servers, database_url=url, **quiet)
    runtime = build_router(settings, bus=MemoryBus())  # the statements counted are PostgreSQL's; no broker needed
    await runtime.start(consume_events=False)
    try:
        async with runtime.db.transaction() as conn:
            await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
        tenants = [random_name("tn") for _ in range(TENANTS)]
        for tenant in tenants:
            await seed_demo(runtime.db, datetime.now(UTC), tenant_id=tenant)
        yield runtime, name, tenants
    finally:
        await runtime.stop()
        await drop_database(url)


def records(runtime: RouterRuntime, tenants: list[str], round_: int, who: str = "user") -> list[Record]:
    """BATCH messages, customers spread over the tenants; round 0 from new customers, later rounds follow-ups."""
    out = []
    for n in range(BATCH):
        tenant = tenants[n % len(tenants)]
        event = inbound(tenant, f"{who}-{n}", f"message {round_} of customer {n}")
        out.append(Record(runtime.topics.events, 0, round_ * BATCH + n, event.partition_key(), encode_event(event)))
    return out


async def batch_cost(runtime: RouterRuntime, name: str, tenants: list[str], round_: int, label: str) -> Cost:
    """What storing the batch of round ``round_`` (all of it) cost, printed under ``label``."""
    await reset(runtime.db)
    result = await runtime.stage.handle(records(runtime, tenants, round_))
    assert result.stored == BATCH
    cost = await cost_of(runtime.db, name)
    print(f"{label}: {cost.statements} statements, {cost.inserted} rows inserted, {cost.updated} updated")
    print(cost.report())
    return cost


async def test_a_batch_costs_a_bounded_number_of_statements_and_rows(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    runtime, name, tenants = router
    await runtime.stage.handle(records(runtime, tenants, 0, "warm"))  # engines built, connections introspected
    new = await batch_cost(runtime, name, tenants, 0, "new customers")
    assert new.statements <= NEW_CUSTOMERS, new.report()
    # customer, identity, conversation (its SLA clocks on its row), message; the acknowledgement: its message
    # (also its "acknowledged" entry) and its outbox row. A message, and a conversation, is its own timeline entry
    assert new.inserted <= 6 * BATCH, new.report()
    # each conversation inserted where routing put it, never updated after: only the tenants' counters change
    assert new.updated <= TENANTS, new.report()
    assert new.deleted <= BATCH, new.report()  # the acknowledgements' outbox rows, once published

    follow = await batch_cost(runtime, name, tenants, 1, "follow-ups")
    assert follow.statements <= FOLLOW_UPS, follow.report()
    assert follow.inserted <= BATCH, follow.report()  # the message, which is its own timeline entry
    assert follow.updated <= BATCH + TENANTS, follow.report()  # the conversation touched once
    assert follow.deleted == 0


def vouched_records(runtime: RouterRuntime, tenants: list[str], round_: int) -> list[Record]:
    """BATCH messages of an app's verified users, each vouching for their name, tier and attributes."""
    out = []
    for n in range(BATCH):
        event = inbound(tenants[n % len(tenants)], f"app-{n}", f"message {round_}", verified=True, name=f"User {n}")
        vouched = event.sender.model_copy(update={"attributes": {"tier": "gold", "plan": f"plan-{round_}"}})
        event = event.model_copy(update={"sender": vouched})
        out.append(Record(runtime.topics.events, 0, round_ * BATCH + n, event.partition_key(), encode_event(event)))
    return out


async def test_what_an_app_vouches_for_is_written_in_one_statement_for_the_batch(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    """A verified sender's profile (name, tier, attributes) is applied to its stored customer with every message:
    one UPDATE for the batch, not one per customer."""
    runtime, name, tenants = router
    await runtime.stage.handle(vouched_records(runtime, tenants, 0))  # the customers, created with round 0's
    await reset(runtime.db)
    result = await runtime.stage.handle(vouched_records(runtime, tenants, 1))
    assert result.stored == BATCH
    cost = await cost_of(runtime.db, name)
    print(cost.report())
    profile_updates = [(calls, q) for calls, _, q in cost.by_statement if re.match(r'UPDATE "?customers\b', q, re.I)]
    assert [calls for calls, _ in profile_updates] == [1], cost.report()
    # a follow-up batch's, the profiles' update, and for the conversations an agent holds (the demo desk's agents
    # took some of round 0's) their feed events, their outbox records and the relay's take
    assert cost.statements <= FOLLOW_UPS + 1 + 3, cost.report()
    async with runtime.db.read() as conn:
        cu = t.customers.c
        rows = (await conn.execute(select(cu.name, cu.tier, cu.attributes).where(cu.tenant_id.in_(tenants)))).all()
    assert len(rows) == BATCH
    assert all(r.tier == "gold" and r.attributes == {"plan": "plan-1"} and r.name.startswith("User ") for r in rows)


async def test_new_customers_given_to_free_agents_have_their_conversations_written_once(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    """Routed before they are written, the new conversations are inserted with their queue, routing fact and
    agent: no conversation row is updated after (what is updated is per tenant and per agent, never per
    message)."""
    runtime, name, tenants = router
    now = datetime.now(UTC)
    async with runtime.db.transaction() as conn:  # room for both batches: 40 agents of 10 chats per tenant
        for tenant in tenants:
            await conn.execute(insert(t.agents), online_agents(tenant, now, AGENTS, 10, id_prefix="agent-f", name="F"))
    await runtime.stage.handle(records(runtime, tenants, 0, "warm"))  # engines built, connections introspected
    cost = await batch_cost(runtime, name, tenants, 0, "new customers, free agents")
    async with runtime.db.read() as conn:
        c = t.conversations.c
        batch = (await conn.execute(select(c.agent_id, c.queue_id, c.routing).where(c.tenant_id.in_(tenants)))).all()
    assert len(batch) == 2 * BATCH, len(batch)  # the warm-up's and the batch's
    assert all(r.agent_id is not None and r.queue_id is not None and r.routing for r in batch)
    conversations_updated = sum(
        rows for _, rows, q in cost.by_statement if q.upper().startswith('UPDATE "CONVERSATIONS"')
    )
    assert conversations_updated == 0, cost.report()
    assert cost.statements <= NEW_CUSTOMERS_ASSIGNED, cost.report()
    assert cost.updated <= TENANTS + TENANTS * AGENTS, cost.report()  # the tenants' counters, agents' last pick


async def test_a_batch_of_resolutions_costs_statements_per_table_not_per_tenant_or_conversation(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    runtime, name, tenants = router
    now = datetime.now(UTC)
    async with runtime.db.transaction() as conn:  # room for the whole batch: 40 agents of 4 chats per tenant
        for tenant in tenants:
            await conn.execute(insert(t.agents), online_agents(tenant, now, 40, 4, id_prefix="agent-b", name="B"))
    await runtime.stage.handle(records(runtime, tenants, 0))
    async with runtime.db.read() as conn:
        c = t.conversations.c
        held = (
            await conn.execute(select(c.id, c.tenant_id).where(c.tenant_id.in_(tenants), c.agent_id.is_not(None)))
        ).all()
    assert len(held) >= BATCH * 0.9, len(held)
    commands = [Command.of(r.tenant_id, Resolve(conversation_id=r.id)) for r in held]
    log = command_log(runtime, commands)
    await reset(runtime.db)
    await runtime.applier.handle(log, lambda: datetime.now(UTC))
    cost = await cost_of(runtime.db, name)
    print(
        f"{len(held)} resolutions: {cost.statements} statements, {cost.inserted} rows inserted, {cost.updated} updated"
    )
    print(cost.report())
    async with runtime.db.read() as conn:
        open_ = (await conn.execute(select(c.id).where(c.tenant_id.in_(tenants), c.status == "open"))).all()
    assert not open_, "every conversation resolved"
    assert cost.statements <= RESOLUTIONS, cost.report()
    # each conversation written once (resolved, its routing fact and its clocks' slots emptied together), each
    # assignment ended once, and the tenants' counters: a second UPDATE of a row is a second row version
    assert cost.updated <= 2 * len(held) + TENANTS, cost.report()


async def held_conversations(runtime: RouterRuntime, tenants: list[str]) -> list[tuple[str, str, str]]:
    """A batch of new customers given to 40 agents of 4 chats per tenant: (tenant, conversation, agent) held."""
    async with runtime.db.transaction() as conn:
        for tenant in tenants:
            await conn.execute(
                insert(t.agents), online_agents(tenant, datetime.now(UTC), 40, 4, id_prefix="agent-h", name="H")
            )
    await runtime.stage.handle(records(runtime, tenants, 0))
    async with runtime.db.read() as conn:
        c = t.conversations.c
        rows = await conn.execute(
            select(c.tenant_id, c.id, c.agent_id).where(c.tenant_id.in_(tenants), c.agent_id.is_not(None))
        )
        return sorted((r.tenant_id, r.id, r.agent_id) for r in rows)


def resolution_writes(cost: Cost) -> int:
    """Statements that wrote resolutions onto conversations' rows."""
    return sum(
        calls
        for calls, _, q in cost.by_statement
        if q.upper().startswith('UPDATE "CONVERSATIONS"') and "resolution_note" in q
    )


async def test_resolutions_between_commands_that_read_nothing_are_written_in_one_statement(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    """An agents' log as a desk writes it: each resolution followed by the agent's next move (here a presence
    change, which reads nothing from the database). Every resolution of the batch, of every tenant, is written
    in one statement, not one per run of resolutions between two other commands."""
    runtime, name, tenants = router
    held = (await held_conversations(runtime, tenants))[:120]
    commands: list[Command] = []
    for tenant, conversation, agent in held:
        commands.append(Command.of(tenant, Resolve(conversation_id=conversation)))
        commands.append(Command.of(tenant, SetPresence(agent_id=agent, presence=Presence.ONLINE)))
    await reset(runtime.db)
    await runtime.applier.handle(command_log(runtime, commands), lambda: datetime.now(UTC))
    cost = await cost_of(runtime.db, name)
    print(cost.report())
    assert await command_statuses(runtime, commands) == [200] * len(commands)
    async with runtime.db.read() as conn:
        c = t.conversations.c
        wanted = [conversation for _, conversation, _ in held]
        statuses = (await conn.execute(select(c.status).where(c.id.in_(wanted)))).scalars().all()
    assert statuses == ["resolved"] * len(held)
    assert resolution_writes(cost) == 1, cost.report()


async def test_a_check_that_reads_the_database_sees_the_resolutions_before_it(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    """A transfer reads whether its conversation is open: resolved earlier in the same batch, it is not (404),
    while the resolutions after the transfer are written with the others."""
    runtime, name, tenants = router
    held = await held_conversations(runtime, tenants)
    (tenant, first, agent), (_, second, _) = [h for h in held if h[0] == tenants[0]][:2]
    (other_tenant, third, _) = next(h for h in held if h[0] == tenants[1])
    commands = [
        Command.of(tenant, Resolve(conversation_id=first)),
        Command.of(tenant, SetPresence(agent_id=agent, presence=Presence.ONLINE)),
        Command.of(tenant, Transfer(conversation_id=first, queue_id=f"{tenant}-q-general")),
        Command.of(tenant, Resolve(conversation_id=second)),
        Command.of(other_tenant, Resolve(conversation_id=third)),
    ]
    await reset(runtime.db)
    await runtime.applier.handle(command_log(runtime, commands), lambda: datetime.now(UTC))
    cost = await cost_of(runtime.db, name)
    assert await command_statuses(runtime, commands) == [200, 200, 404, 200, 200], cost.report()
    async with runtime.db.read() as conn:
        c = t.conversations.c
        statuses = dict((await conn.execute(select(c.id, c.status).where(c.id.in_([first, second, third])))).all())
    assert statuses == {first: "resolved", second: "resolved", third: "resolved"}


async def test_a_batch_of_agents_commands_reads_the_agents_once_per_tenant(
    router: tuple[RouterRuntime, str, list[str]],
) -> None:
    """Presence changes and offers answered by many agents of a tenant, one batch on the log: whether each agent
    exists is asked in one statement for the tenant, not one per command."""
    runtime, name, tenants = router
    now = datetime.now(UTC)
    async with runtime.db.transaction() as conn:
        for tenant in tenants:
            await conn.execute(insert(t.agents), online_agents(tenant, now, AGENTS, 4, id_prefix="agent-p", name="P"))
    commands = [
        Command.of(tenant, SetPresence(agent_id=f"{tenant}-agent-p{n}", presence=Presence.AWAY))
        for tenant in tenants
        for n in range(AGENTS)
    ]
    warm = [
        Command.of(tenant, SetPresence(agent_id=f"{tenant}-agent-p0", presence=Presence.ONLINE)) for tenant in tenants
    ]
    log = command_log(runtime, [*warm, *commands])
    await runtime.applier.handle(log[: len(warm)], lambda: datetime.now(UTC))  # engines built, connections set up
    await reset(runtime.db)
    await runtime.applier.handle(log[len(warm) :], lambda: datetime.now(UTC))
    cost = await cost_of(runtime.db, name)
    print(f"{len(commands)} presence changes: {cost.statements} statements, {cost.updated} rows updated")
    print(cost.report())
    async with runtime.db.read() as conn:
        a = t.agents.c
        away = (
            await conn.execute(
                select(a.id).where(a.tenant_id.in_(tenants), a.presence == "away", a.id.contains("-agent-p"))
            )
        ).all()
    assert len(away) == TENANTS * AGENTS
    agent_reads = sum(calls for calls, _, q in cost.by_statement if q.upper().startswith("SELECT AGENTS.ID"))
    assert agent_reads <= TENANTS, cost.report()
    assert cost.statements <= PRESENCE_PER_TENANT * TENANTS, cost.report()


async def test_a_batch_of_the_tenants_log_takes_the_outbox_once(router: tuple[RouterRuntime, str, list[str]]) -> None:
    """Events and commands in one batch of the tenants' log: what their transactions committed is published
    once, at the batch's end, one take of the outbox for the batch (not one after each transaction)."""
    runtime, name, tenants = router
    now = datetime.now(UTC)
    async with runtime.db.transaction() as conn:
        for tenant in tenants:
            await conn.execute(insert(t.agents), online_agents(tenant, now, AGENTS, 10, id_prefix="agent-l", name="L"))
    await runtime.stage.handle(records(runtime, tenants, 0, "warm"))  # engines built, connections introspected
    commands = [
        Command.of(tenant, SetPresence(agent_id=f"{tenant}-agent-l{n}", presence=Presence.AWAY))
        for tenant in tenants
        for n in range(2)
    ]
    log = [
        *records(runtime, tenants, 0, "log")[:200],  # what they publish fits one take (the relay's 1,000 rows)
        *command_log(runtime, commands),
    ]
    await reset(runtime.db)
    await runtime.tenant_log.handle(log)
    await runtime.relay.settled()  # published by the relay's loop, kicked at the batch's end
    cost = await cost_of(runtime.db, name)
    takes = sum(calls for calls, _, q in cost.by_statement if q.upper().startswith("WITH OLDEST AS MATERIALIZED"))
    assert takes == 1, cost.report()
    async with runtime.db.read() as conn:
        c = t.routing_commands.c
        statuses = (await conn.execute(select(c.status).where(c.id.in_([x.id for x in commands])))).scalars().all()
    assert sorted(statuses) == [200] * len(commands)
