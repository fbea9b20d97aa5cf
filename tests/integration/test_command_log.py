"""The routing command log's delivery guarantees: a command redelivered by the bus is applied once, a client's
retry with the same Idempotency-Key gets the first outcome without running again, and a malformed command is
dead-lettered with its reason while the ones after it are applied."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select

from services.router.adapters.db import raw
from services.router.adapters.db import tables as t
from services.router.domain.model import Presence
from services.router.handlers.ports.command_outcomes import Outcome
from shared.bus import Outgoing, Record
from shared.routing_commands import Command, SetPresence
from tests.support.runtime import Desk, desk_fixture, serving, settings_for, started_desk, wait_for

desk = desk_fixture()


def count_applied(desk: Desk) -> list[str]:
    """The ids of this tenant's commands the owner runs (timer ticks of other tenants on a shared database are
    left out)."""
    ran: list[str] = []
    apply = desk.router.applier.apply

    async def counting(command: Command) -> int:
        if command.tenant == desk.tenant:
            ran.append(command.id)
        return await apply(command)

    desk.router.applier.apply = counting
    together = desk.router.applier.apply_many
    assert together is not None

    async def counting_together(batches: Mapping[str, Sequence[Command]]) -> dict[str, Outcome] | None:
        applied = await together(batches)
        if applied is not None:  # (if not, each comes again through apply)
            ran.extend(c.id for c in batches.get(desk.tenant, ()))
        return applied

    desk.router.applier.apply_many = counting_together
    return ran


async def outcomes(desk: Desk, command_id: str) -> int:
    async with desk.router.repo.reader() as conn:
        c = t.routing_commands.c
        return int((await conn.execute(select(func.count()).where(c.id == command_id))).scalar_one())


async def test_a_redelivered_command_is_applied_once(desk: Desk) -> None:
    grace = desk.agent("agent-grace")
    command = Command.new(desk.tenant, "set_presence", agent_id=grace, presence="online")
    ran = count_applied(desk)
    record = command.record(desk.router.topics)
    await desk.bus.publish([record, record])  # the bus delivers it twice (a retry after a lost acknowledgement)
    marker = Command.new(desk.tenant, "tick")
    await desk.bus.publish([marker.record(desk.router.topics)])
    await wait_for(lambda: outcomes(desk, marker.id))  # same partition: everything before it was handled
    assert ran == [command.id, marker.id], "the command once, then the marker"
    assert await outcomes(desk, command.id) == 1


async def test_a_retry_with_the_same_idempotency_key_returns_the_first_outcome(desk: Desk) -> None:
    ada = desk.agent("agent-ada")
    async with (
        serving(desk.router) as base,
        httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}, timeout=30) as http,
    ):
        ran = count_applied(desk)
        headers = {"Idempotency-Key": "presence-away-1"}
        first = await http.put(f"/v1/agents/{ada}/presence", json={"presence": "away"}, headers=headers)
        again = await http.put(f"/v1/agents/{ada}/presence", json={"presence": "away"}, headers=headers)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        assert len(ran) == 1, "the retry was answered, not run"
        other = await http.put(f"/v1/agents/{ada}/presence", json={"presence": "online"})
        assert other.status_code == 200 and len(ran) == 2
        bad = await http.post(
            f"/v1/agents/{ada}/accept", json={"conversation_id": "nothing-offered"}, headers={"Idempotency-Key": "k2"}
        )
        bad_again = await http.post(
            f"/v1/agents/{ada}/accept", json={"conversation_id": "nothing-offered"}, headers={"Idempotency-Key": "k2"}
        )
        assert bad.status_code == bad_again.status_code == 409, bad.text  # a refusal is an outcome too
        assert bad.json()["detail"] == bad_again.json()["detail"]


async def test_a_malformed_command_is_dead_lettered_and_the_next_one_applied(tmp_path: Path) -> None:
    async with started_desk(settings_for("embedded", tmp_path)) as desk:
        topics = desk.router.topics
        good = Command.new(desk.tenant, "tick")
        await desk.bus.publish(
            [
                Outgoing(topics.routing_commands, b"{not json", key=desk.tenant.encode()),
                Outgoing(topics.routing_commands, b'{"id": "x", "tenant": "t", "kind": "reboot"}', key=b"t"),
                good.record(topics),
            ]
        )
        await wait_for(lambda: outcomes(desk, good.id))
        dead = desk.bus.records(topics.deadletter)  # type: ignore[attr-defined]
        reasons = [dict(r.headers)["reason"].decode() for r in dead]
        assert any("not JSON" in r for r in reasons) and any("unknown kind 'reboot'" in r for r in reasons)


async def _statuses(desk: Desk, commands: list[Command]) -> list[int | None]:
    async with desk.router.repo.reader() as conn:
        c = t.routing_commands.c
        rows = dict((await conn.execute(select(c.id, c.status).where(c.id.in_([x.id for x in commands])))).all())
    return [rows.get(x.id) for x in commands]


async def _presence(desk: Desk, agent_id: str) -> str:
    async with desk.router.repo.reader() as conn:
        a = t.agents.c
        return str((await conn.execute(select(a.presence).where(a.id == agent_id))).scalar_one())


async def test_a_batch_of_commands_applies_together_and_a_refused_one_alone_fails(desk: Desk) -> None:
    """A tenant's commands of one batch: all valid, one transaction for them all; one refused among them, that
    one gets its error and the others apply, each exactly once, with nothing of the refused one kept."""
    ada, grace = desk.agent("agent-ada"), desk.agent("agent-grace")
    together: list[dict[str, Outcome] | None] = []
    apply_many = desk.router.applier.apply_many
    assert apply_many is not None

    async def watching(batches: Mapping[str, Sequence[Command]]) -> dict[str, Outcome] | None:
        together.append(await apply_many(batches))
        return together[-1]

    desk.router.applier.apply_many = watching
    ran = count_applied(desk)

    def records(*commands: Command) -> list[Record]:
        return [
            Record(desk.router.topics.routing_commands, 0, n, c.tenant.encode(), c.encode())
            for n, c in enumerate(commands)
        ]

    valid = [
        Command.new(desk.tenant, "set_presence", agent_id=grace, presence="away"),
        Command.new(desk.tenant, "set_presence", agent_id=ada, presence="away"),
    ]
    await desk.router.applier.handle(records(*valid), desk.router.clock)
    assert together and together[-1] is not None, "applied in one transaction"
    assert await _statuses(desk, valid) == [200, 200]
    assert (await _presence(desk, grace), await _presence(desk, ada)) == ("away", "away")

    refused_by_the_engine = [
        Command.new(desk.tenant, "set_presence", agent_id=grace, presence="online"),
        Command.new(desk.tenant, "accept", agent_id=grace, conversation_id="nothing-offered"),
        Command.new(desk.tenant, "set_presence", agent_id=ada, presence="online"),
    ]
    ran.clear()
    await desk.router.applier.handle(records(*refused_by_the_engine), desk.router.clock)
    assert together[-1] is not None, "a refusal in the engine is its command's outcome: the batch applies"
    assert await _statuses(desk, refused_by_the_engine) == [200, 409, 200]
    assert ran == [c.id for c in refused_by_the_engine], "each once"
    assert (await _presence(desk, grace), await _presence(desk, ada)) == ("online", "online")

    mixed = [
        Command.new(desk.tenant, "set_presence", agent_id=grace, presence="away"),
        Command.new(desk.tenant, "resolve", conversation_id="no-such-conversation"),
        Command.new(desk.tenant, "set_presence", agent_id=ada, presence="offline"),
    ]
    ran.clear()
    await desk.router.applier.handle(records(*mixed), desk.router.clock)
    assert together[-1] is None, "a refusal before the engines fails the batch as a whole"
    assert await _statuses(desk, mixed) == [200, 404, 200]
    assert ran == [c.id for c in mixed], "then each once, in log order"
    assert (await _presence(desk, grace), await _presence(desk, ada)) == ("away", "offline")


async def test_a_command_without_a_key_waits_for_its_owner_without_reading_outcomes(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keyless command cannot be a retry, so nothing is read before it is submitted; and when this replica
    owns the tenant, its outcome comes from the owner in the same process, not from polling the database. The
    outcome table is read once: by the owner, checking the command is not applied already."""
    grace = desk.agent("agent-grace")
    await desk.router.commands.run(desk.tenant, SetPresence(agent_id=grace, presence=Presence.AWAY))  # owner now
    reads: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "FROM routing_commands" in statement and statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    fetch = raw.fetch

    async def fetched(conn: Any, sql: str, *args: Any, **kwargs: Any) -> Any:  # statements asyncpg runs itself
        seen(conn, None, sql)
        return await fetch(conn, sql, *args, **kwargs)

    monkeypatch.setattr(raw, "fetch", fetched)
    engine = desk.router.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for presence in (Presence.ONLINE, Presence.AWAY, Presence.ONLINE):
            await desk.router.commands.run(desk.tenant, SetPresence(agent_id=grace, presence=presence))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(reads) == 3, reads  # one per command, the owner's
