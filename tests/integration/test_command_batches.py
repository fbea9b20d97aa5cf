"""A batch of routing commands of several tenants: applied in one transaction. A command the routing engine
itself refuses (an accept of nothing offered) gets its error in that transaction, and every engine is kept. A
command refused before the engines run (a resolve of no open conversation) fails the transaction: each tenant's
commands are tried in a transaction of their own, the refusing tenant's then one by one, and the refused one
gets its error. Nothing is applied twice, nothing of the refused one is kept."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from services.router.adapters.db import tables as t
from services.router.adapters.db.seed import seed_demo
from services.router.bootstrap import RouterRuntime, build_router
from services.router.domain.model import Presence
from services.router.handlers.ports.command_outcomes import Outcome
from shared.bus_memory import MemoryBus
from shared.routing_commands import Accept, Command, Resolve, SetPresence
from tests.conftest import Servers, random_name
from tests.support.commands import command_log, command_statuses
from tests.support.databases import create_database, drop_database
from tests.support.desks import online_agents
from tests.support.runtime import settings_for

TENANTS = 3


@pytest.fixture
async def router(servers: Servers, tmp_path: Path) -> AsyncIterator[tuple[RouterRuntime, list[str]]]:
    url = await create_database(servers.database_url, random_name("switchboard_batches_"))
    quiet = dict(routing_tick_s=3600, routing_sweep_s=3600, presence_heartbeat_s=3600, outbox_relay_s=3600)
    runtime = build_router(settings_for("production", tmp_path, servers, database_url=url, **quiet), bus=MemoryBus())
    await runtime.start(consume_events=False)
    try:
        tenants = sorted(random_name("tn") for _ in range(TENANTS))
        now = datetime.now(UTC)
        for tenant in tenants:
            await seed_demo(runtime.db, now, tenant_id=tenant)
        async with runtime.db.transaction() as conn:
            for tenant in tenants:
                await conn.execute(insert(t.agents), online_agents(tenant, now, 2, 4, id_prefix="agent-b", name="B"))
        yield runtime, tenants
    finally:
        await runtime.stop()
        await drop_database(url)


def watch(runtime: RouterRuntime) -> list[tuple[list[str], bool]]:
    """Each call of the applier's ``apply_many``: the tenants it was given, and whether they applied."""
    calls: list[tuple[list[str], bool]] = []
    apply_many = runtime.applier.apply_many
    assert apply_many is not None

    async def watching(batches: Mapping[str, Sequence[Command]]) -> dict[str, Outcome] | None:
        applied = await apply_many(batches)
        calls.append((sorted(batches), applied is not None))
        return applied

    runtime.applier.apply_many = watching
    return calls


async def presences(runtime: RouterRuntime, tenants: list[str]) -> dict[str, str]:
    async with runtime.db.read() as conn:
        a = t.agents.c
        rows = await conn.execute(select(a.id, a.presence).where(a.tenant_id.in_(tenants), a.id.contains("-agent-b")))
        return {r.id: r.presence for r in rows}


def away(tenant: str, n: int) -> Command:
    return Command.of(tenant, SetPresence(agent_id=f"{tenant}-agent-b{n}", presence=Presence.AWAY))


def online(tenant: str, n: int) -> Command:
    return Command.of(tenant, SetPresence(agent_id=f"{tenant}-agent-b{n}", presence=Presence.ONLINE))


async def test_every_tenants_commands_apply_in_one_transaction(router: tuple[RouterRuntime, list[str]]) -> None:
    runtime, tenants = router
    calls = watch(runtime)
    commands = [away(tenant, n) for n in range(2) for tenant in tenants]
    await runtime.applier.handle(command_log(runtime, commands), lambda: datetime.now(UTC))
    assert calls == [(tenants, True)], "one transaction for the tenants' commands together"
    assert await command_statuses(runtime, commands) == [200] * len(commands)
    assert set((await presences(runtime, tenants)).values()) == {"away"}


async def test_a_command_refused_by_the_engine_gets_its_error_and_the_batch_applies_with_every_engine_kept(
    router: tuple[RouterRuntime, list[str]],
) -> None:
    runtime, tenants = router
    warm = [away(tenant, 1) for tenant in tenants]  # every tenant's engine built and kept
    await runtime.applier.handle(command_log(runtime, warm), lambda: datetime.now(UTC))
    calls = watch(runtime)
    rebuilds = runtime.routing.rebuilds
    refusing = tenants[1]
    refused = Command.of(refusing, Accept(agent_id=f"{refusing}-agent-b0", conversation_id="nothing-offered"))
    commands = [away(tenants[0], 0), away(refusing, 0), refused, online(refusing, 1), away(tenants[2], 0)]
    await runtime.applier.handle(command_log(runtime, commands), lambda: datetime.now(UTC))
    assert calls == [(tenants, True)], "one transaction, the refusal its command's outcome"
    assert runtime.routing.rebuilds == rebuilds, "no engine dropped: the refusal changed none"
    got = await command_statuses(runtime, commands)
    assert got[:2] == [200, 200] and got[3:] == [200, 200], got
    assert got[2] == 409, got
    seen = await presences(runtime, tenants)
    assert seen[f"{tenants[0]}-agent-b0"] == seen[f"{refusing}-agent-b0"] == seen[f"{tenants[2]}-agent-b0"] == "away"
    assert seen[f"{refusing}-agent-b1"] == "online", "the command after the refused one applied"
    # the engines kept are the store's: the next pass of every tenant uses them, and an agent's going online
    # again is routed from what they hold
    again = [online(tenant, 0) for tenant in tenants]
    await runtime.applier.handle(command_log(runtime, again), lambda: datetime.now(UTC))
    assert runtime.routing.rebuilds == rebuilds
    assert await command_statuses(runtime, again) == [200] * len(again)


async def test_a_command_refused_before_the_engines_leaves_every_other_command_applied(
    router: tuple[RouterRuntime, list[str]],
) -> None:
    runtime, tenants = router
    calls = watch(runtime)
    refusing = tenants[1]
    refused = Command.of(refusing, Resolve(conversation_id="no-such-conversation"))
    commands = [away(tenants[0], 0), away(refusing, 0), refused, away(refusing, 1), away(tenants[2], 0)]
    await runtime.applier.handle(command_log(runtime, commands), lambda: datetime.now(UTC))
    # all together first: refused as a whole; then each tenant with more than one command on its own
    assert calls == [(tenants, False), ([refusing], False)], calls
    got = await command_statuses(runtime, commands)
    assert got[:2] == [200, 200] and got[3:] == [200, 200], got
    assert got[2] == 404, got
    seen = await presences(runtime, tenants)
    assert seen[f"{tenants[0]}-agent-b0"] == seen[f"{refusing}-agent-b0"] == seen[f"{refusing}-agent-b1"] == "away"
    assert seen[f"{tenants[2]}-agent-b0"] == "away"
    assert seen[f"{tenants[0]}-agent-b1"] == seen[f"{tenants[2]}-agent-b1"] == "online", "nothing else changed"
