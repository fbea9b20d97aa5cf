"""Property tests of the routing engine over random sequences of arrivals, presence changes, accepts,
declines, timeouts, transfers and resolves (hypothesis stateful testing)."""

from __future__ import annotations

import pickle
from collections import Counter

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from services.router.domain.errors import DomainError, InvalidCommand
from services.router.domain.model import Presence
from services.router.domain.routing.capacity import Profile
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.specs import AgentSpec, QueueSpec, Step, Strategy
from tests.support.routing import assert_nothing_waits_that_someone_could_take, machine_test, main_queue

T0 = 1_795_000_000.0
AGENTS = [f"a{i}" for i in range(4)]
CHANNELS = ["chat", "email", "voice"]


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = RoutingEngine()
        self.now = T0
        self.n = 0
        self.live: set[str] = set()
        self.profiles: dict[str, Profile] = {}

    @rule(
        offers=st.sampled_from([None, 30.0]),
        strategy=st.sampled_from([Strategy.LEAST_LOADED, Strategy.ROUND_ROBIN, Strategy.STICKY]),
        caps=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 1)), min_size=4, max_size=4),
        profiles=st.lists(
            st.tuples(st.sampled_from([1.0, 2.0, 3.0]), st.sampled_from([0.5, 1.0]), st.booleans(), st.integers(1, 3)),
            min_size=2,
            max_size=2,
        ),
        stepped=st.booleans(),
    )
    @precondition(lambda self: not self.engine.queues)
    def configure(
        self,
        offers: float | None,
        strategy: Strategy,
        caps: list[tuple[int, int, int]],
        profiles: list[tuple[float, float, bool, int]],
        stepped: bool,
    ) -> None:
        # stepped: main's work goes to the "team" queue's agents from 40 s (a2 serves only the team, a3 both),
        # back to main's own from 120 s
        steps = (Step(0), Step(40, queue="team"), Step(120)) if stepped else ()
        self.engine.upsert_queue(main_queue(offers, strategy, steps=steps))
        self.engine.upsert_queue(QueueSpec("wide", rule={"attr": "never", "exists": True}))
        self.engine.upsert_queue(QueueSpec("team", rule={"any": []}))
        for i, (agent, (chat, email, voice)) in enumerate(zip(AGENTS, caps, strict=True)):
            queues = {"main", "wide", "team"} if agent == "a3" else {"team"} if agent == "a2" and stepped else {"main"}
            profile = None
            if i >= 2:  # a2 and a3 work to a routing profile: units, a maximum of email, a call alone or not
                units, email_weight, voice_alone, email_max = profiles[i - 2]
                profile = Profile(
                    f"p{i}",
                    capacity=units,
                    weights={"default": 1.0, "email": email_weight},
                    max_per_channel={"email": email_max},
                    exclusive=frozenset({"voice"}) if voice_alone else frozenset(),
                )
                self.profiles[agent] = profile
            self.engine.upsert_agent(
                AgentSpec(agent, frozenset(queues), {"chat": chat, "email": email, "voice": voice}, profile=profile)
            )

    @precondition(lambda self: bool(self.engine.queues))
    @rule(
        channel=st.sampled_from(CHANNELS),
        tier=st.sampled_from(["standard", "gold"]),
        previous=st.sampled_from([None, *AGENTS]),
        owner=st.sampled_from([None, *AGENTS]),
        window=st.sampled_from([0.0, 0.0, 45.0]),
    )
    def arrive(self, channel: str, tier: str, previous: str | None, owner: str | None, window: float) -> None:
        self.n += 1
        attrs = {"tier": tier, "owner_agent_id": owner, "not_before": self.now + window if window else None}
        self.engine.arrive(f"c{self.n}", channel, attrs, self.now, previous_agent=previous)
        self.live.add(f"c{self.n}")

    @precondition(lambda self: bool(self.engine.queues))
    @rule(agent=st.sampled_from(AGENTS), presence=st.sampled_from(list(Presence)))
    def presence(self, agent: str, presence: Presence) -> None:
        self.engine.set_presence(agent, presence, self.now)

    @precondition(lambda self: bool(self.live))
    @rule(
        data=st.data(),
        verb=st.sampled_from(
            ["accept", "decline", "resolve", "to_agent", "to_queue", "switch", "escalate", "no_answer"]
        ),
    )
    def act(self, data: st.DataObject, verb: str) -> None:
        conversation = data.draw(st.sampled_from(sorted(self.live)))
        work = self.engine.work(conversation)
        assert work is not None
        try:
            if verb == "resolve":
                self.engine.resolve(conversation, self.now)
                self.live.discard(conversation)
            elif verb in ("accept", "decline") and work.agent_id:
                getattr(self.engine, verb)(work.agent_id, conversation, self.now)
            elif verb == "to_agent":
                self.engine.transfer_to_agent(conversation, data.draw(st.sampled_from(AGENTS)), self.now)
            elif verb == "to_queue":
                self.engine.transfer_to_queue(conversation, data.draw(st.sampled_from(["main", "wide"])), self.now)
            elif verb == "switch":  # the customer calls, or the call ends
                self.engine.switch_channel(conversation, data.draw(st.sampled_from(CHANNELS)), self.now)
            elif verb == "escalate":
                self.engine.escalate(conversation, data.draw(st.sampled_from(["wide", None])), self.now)
            elif verb == "no_answer" and work.agent_id:
                self.engine.decline(work.agent_id, conversation, self.now, "no_answer", offered_only=False)
        except InvalidCommand:
            pass  # refused as a whole: the invariants below prove nothing changed for the worse

    @precondition(lambda self: bool(self.engine.queues))
    @rule(
        data=st.data(),
        verb=st.sampled_from(["accept", "decline", "claim", "to_agent", "to_queue"]),
        agent=st.sampled_from([*AGENTS, "nobody"]),
    )
    def agent_moves(self, data: st.DataObject, verb: str, agent: str) -> None:
        """An agent's own move, on any conversation (gone, someone else's, waiting) or agent (unknown too). The
        router applies such commands of many tenants in one pass of their engines, and a refused one leaves
        the pass going: so a refusal must leave the engine exactly as it was, down to what it notes to save."""
        conversation = data.draw(st.sampled_from([*sorted(self.live), f"c{self.n + 1}"]))
        before = pickle.dumps(self.engine)
        try:
            if verb == "to_agent":
                self.engine.transfer_to_agent(conversation, agent, self.now)
            elif verb == "to_queue":
                self.engine.transfer_to_queue(
                    conversation, data.draw(st.sampled_from(["main", "wide", "gone"])), self.now
                )
            else:
                getattr(self.engine, verb)(agent, conversation, self.now)
        except DomainError:
            assert pickle.dumps(self.engine) == before, f"a refused {verb} changed the engine"

    @precondition(lambda self: bool(self.engine.queues))
    @rule(seconds=st.sampled_from([1.0, 10.0, 31.0, 120.0]))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        self.engine.tick(self.now)

    # -- invariants ----------------------------------------------------------------------------------------------
    def _assigned(self) -> dict[str, list[tuple[str, str]]]:
        by_agent: dict[str, list[tuple[str, str]]] = {a: [] for a in AGENTS}
        for conversation in self.live:
            work = self.engine.work(conversation)
            if work is not None and work.agent_id is not None:
                by_agent[work.agent_id].append((conversation, work.channel))
        return by_agent

    @invariant()
    def never_above_capacity_and_loads_add_up(self) -> None:
        if not self.engine.queues:
            return
        for agent, items in self._assigned().items():
            counts = Counter(channel for _, channel in items)
            load = {c: n for c, n in self.engine.agent_load(agent).items() if n}
            assert load == dict(counts)
            profile = self.profiles.get(agent)
            if profile is None:
                spec_caps = self.engine._agents[agent].spec.capacity
                assert all(n <= spec_caps.get(c, 0) for c, n in counts.items())
                continue
            # a profile: weighted units within capacity, per-channel maxima, and a call (exclusive) alone
            weights = {"chat": 1.0, "email": profile.weights["email"]}
            if "voice" in profile.exclusive and counts["voice"]:
                assert dict(counts) == {"voice": 1}, f"{agent} holds more than the call: {counts}"
                continue
            units = sum(weights.get(c, 1.0) * n for c, n in counts.items())
            assert units <= profile.capacity + 1e-9, f"{agent}: {units} units > {profile.capacity}"
            assert counts["email"] <= profile.max_per_channel["email"]

    @invariant()
    def never_to_two_agents_and_never_to_an_offline_one(self) -> None:
        if not self.engine.queues:
            return
        seen: set[str] = set()
        for agent in AGENTS:
            mine = self.engine.agent_work(agent)
            assert not (mine & seen)
            seen |= mine
            if self.engine.presence(agent) is Presence.OFFLINE:
                assert not mine

    @invariant()
    def waiting_work_is_assigned_whenever_an_eligible_agent_has_room(self) -> None:
        assert_nothing_waits_that_someone_could_take(self.engine, AGENTS, self.now)


TestEngine = machine_test(EngineMachine, examples=150, steps=40)


def test_no_conversation_waits_forever_under_sustained_higher_priority_load() -> None:
    """One agent, a standard customer, and a gold customer arriving every 10 s forever: the standard one is
    served once the gold ones queued after its head start (300 s) are behind it."""
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    e.upsert_agent(AgentSpec("a", frozenset({"q"}), {"default": 1}))
    e.set_presence("a", Presence.ONLINE, T0)
    e.arrive("first", "chat", {}, T0)
    e.arrive("standard", "chat", {"tier": "standard"}, T0 + 1)
    busy = "first"
    served_at = None
    for step in range(1, 200):
        now = T0 + step * 10
        e.arrive(f"gold{step}", "chat", {"tier": "gold"}, now)
        out = e.resolve(busy, now + 5)
        (busy,) = [d.conversation_id for d in out if type(d).__name__ == "Assigned"]
        if busy == "standard":
            served_at = now + 5
            break
    assert served_at is not None and served_at - T0 <= 1 + 300 + 20
