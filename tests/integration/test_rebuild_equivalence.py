"""Rebuild equivalence through the running router and its store (SQLite, and PostgreSQL for production).

Random sequences of arrivals (through the context stage), presence changes, accepts, declines, offer timeouts,
transfers, SLA escalations, configuration edits and resolves (through the routing commands the tenant's owner
runs) are applied to a router; after each step the engine the router keeps in memory is compared with an engine
rebuilt from the database alone. Any fact the router's transaction leaves unwritten makes them differ (the unit
test of the same name shows the check notices each one).
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import insert

from services.router.adapters.db import tables as t
from services.router.adapters.db.migrate import upgrade
from services.router.bootstrap import RouterRuntime, build_router
from services.router.domain.errors import DomainError
from services.router.domain.routing.engine import RoutingEngine
from services.router.entrypoints.http.configuration import AgentIn, QueueIn
from shared.bus import Record
from shared.bus_memory import MemoryBus
from shared.events import Channel, Content, ConversationEvent, IdentityKind, Sender, encode_event, new_event_id
from shared.routing_commands import Accept, Command, Decline, Escalate, Resolve, RoutingCommand, SetPresence, Transfer
from shared.store import Database
from tests.conftest import random_name
from tests.support.runtime import settings_for
from tests.unit.test_rebuild_equivalence import next_decisions, snapshot

AGENTS = ["a0", "a1", "a2"]


class RouterMachine(RuleBasedStateMachine):
    """One router, one tenant, a clock the test moves."""

    database_url = ""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.tenant = random_name("tn")
        settings_ = settings_for("embedded", Path("/unused"), database_url=self.database_url, auto_migrate=False)
        self.router: RouterRuntime = build_router(settings_, bus=MemoryBus(), clock=lambda: self.now)
        self.agents: dict[str, str] = {}
        self.queues: dict[str, str] = {}
        self.live: set[str] = set()
        self.n = 0

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.router.db.close())
        self.loop.close()

    @initialize(
        offers=st.sampled_from([None, 30.0]),
        missed=st.sampled_from(["away", "decline"]),
        strategy=st.sampled_from(["least_loaded", "round_robin"]),
        caps=st.lists(st.integers(0, 2), min_size=3, max_size=3),
    )
    def desk(self, offers: float | None, missed: str, strategy: str, caps: list[int]) -> None:
        async def setup() -> None:
            async with self.router.db.transaction() as conn:
                await conn.execute(insert(t.tenants).values(id=self.tenant, name="t", created_at=self.now))
            conf = self.router.configuration
            wide = await conf.create_queue(
                self.tenant,
                _values(QueueIn(name="wide", channels=["sms"], routing={"offer_timeout_s": offers})),
            )
            routing: dict[str, Any] = {
                "strategy": strategy,
                "offer_timeout_s": offers,
                "max_declines": 2,
                "decline_exclusion_s": 60,
                "on_missed_offer": missed,
                "overflow_after_s": 90,
                "overflow_to": wide["id"],
            }
            main = await conf.create_queue(self.tenant, _values(QueueIn(name="main", is_default=True, routing=routing)))
            self.queues = {"main": main["id"], "wide": wide["id"]}
            for name, cap in zip(AGENTS, caps, strict=True):
                queues = [main["id"], wide["id"]] if name == "a2" else [main["id"]]
                agent = await conf.create_agent(
                    self.tenant, _values(AgentIn(name=name, queue_ids=queues, capacity={"default": cap}))
                )
                self.agents[name] = agent["id"]
            await self.router.executor.tick(self.tenant)

        self.run(setup())

    async def _command(self, body: RoutingCommand) -> None:
        try:
            await self.router.executor.apply(Command.of(self.tenant, body))
        except DomainError:
            pass  # refused as a whole (not offered to them, not online...): nothing changed

    @rule(tier=st.sampled_from(["standard", "gold"]))
    def arrive(self, tier: str) -> None:
        self.n += 1
        event = ConversationEvent(
            id=new_event_id(),
            source="tests",
            time=self.now,
            tenant=self.tenant,
            channel=Channel.CHAT,
            sender=Sender(kind=IdentityKind.APP_USER, value=f"customer-{self.n}", verified=False),
            content=Content(text="hello"),
            received_at=self.now,
        )
        self.run(self.router.stage.handle([Record("events", 0, self.n, None, encode_event(event))]))

    @rule(agent=st.sampled_from(AGENTS), presence=st.sampled_from(["online", "away", "offline"]))
    def presence(self, agent: str, presence: str) -> None:
        self.run(self._command(SetPresence(agent_id=self.agents[agent], presence=presence)))  # type: ignore[arg-type]

    @precondition(lambda self: self._open())
    @rule(
        data=st.data(),
        verb=st.sampled_from(["accept", "decline", "resolve", "to_agent", "to_queue", "raise", "escalate"]),
    )
    def act(self, data: st.DataObject, verb: str) -> None:
        engine = self._engine()
        assert engine is not None
        cid = data.draw(st.sampled_from(sorted(self._open())))
        work = engine.work(cid)
        holder = work.agent_id if work is not None else None
        body: RoutingCommand | None = None
        if verb == "accept" and holder:
            body = Accept(agent_id=holder, conversation_id=cid)
        elif verb == "decline" and holder:
            body = Decline(agent_id=holder, conversation_id=cid)
        elif verb == "resolve":
            body = Resolve(conversation_id=cid, survey="none")
        elif verb == "to_agent":
            body = Transfer(conversation_id=cid, agent_id=self.agents[data.draw(st.sampled_from(AGENTS))])
        elif verb == "to_queue":
            body = Transfer(conversation_id=cid, queue_id=self.queues[data.draw(st.sampled_from(["main", "wide"]))])
        elif verb in ("raise", "escalate"):
            body = Escalate(escalations={cid: self.queues["wide"] if verb == "escalate" else None})
        if body is not None:
            self.run(self._command(body))

    @rule(agent=st.sampled_from(AGENTS), cap=st.integers(0, 3))
    def edit_agent(self, agent: str, cap: int) -> None:
        """A supervisor edits an agent; the tick the edit puts on the log routes at once."""

        async def edit() -> None:
            await self.router.configuration.update_agent(
                self.tenant, self.agents[agent], {"capacity": {"default": cap}}
            )
            await self.router.executor.tick(self.tenant)

        self.run(edit())

    @rule(seconds=st.sampled_from([1, 31, 61, 95]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        self.run(self.router.executor.tick(self.tenant))

    def _engine(self) -> RoutingEngine | None:
        return self.router.routing.current(self.tenant)

    def _open(self) -> set[str]:
        engine = self._engine()
        return {w.conversation_id for w in engine._work.values()} if engine is not None else set()

    @invariant()
    def the_engine_in_memory_is_the_one_the_database_describes(self) -> None:
        live = self._engine()
        if live is None or not self.router.routing.is_cached(self.tenant):
            return

        async def rebuild() -> tuple[RoutingEngine, list[Any]]:
            async with self.router.repo.unit() as u:
                return await self.router.routing.rebuild(u, self.tenant, self.now)

        rebuilt, decided = self.run(rebuild())
        conversations = self._open()
        t0 = self.now.timestamp()
        assert decided == [], "a rebuild from complete facts has nothing left to decide"
        assert snapshot(rebuilt, conversations) == snapshot(live, conversations)
        assert next_decisions(rebuilt, t0) == next_decisions(live, t0)


def _values(model: Any) -> dict[str, Any]:
    return dict(model.model_dump(mode="json", exclude_none=True))


def _machine_on(url: str) -> type[RouterMachine]:
    return type("Machine", (RouterMachine,), {"database_url": url})


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rebuild") / "template.db"
    db = Database(f"sqlite+aiosqlite:///{path}")
    asyncio.run(_migrate(db))
    return path


async def _migrate(db: Database) -> None:
    await upgrade(db)
    await db.close()


def test_embedded_router_rebuilds_exactly_the_engine_it_had(sqlite_template: Path, tmp_path: Path) -> None:
    count = iter(range(1_000_000))

    class OnSqlite(RouterMachine):
        def __init__(self) -> None:
            path = tmp_path / f"r{next(count)}.db"
            shutil.copy(sqlite_template, path)
            self.database_url = f"sqlite+aiosqlite:///{path}"
            super().__init__()

    run_state_machine_as_test(
        OnSqlite,
        settings=settings(
            max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )


def test_production_router_rebuilds_exactly_the_engine_it_had(servers: Any) -> None:
    asyncio.run(_migrate(Database(servers.database_url)))
    run_state_machine_as_test(
        _machine_on(servers.database_url),
        settings=settings(
            max_examples=10, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
        ),
    )
