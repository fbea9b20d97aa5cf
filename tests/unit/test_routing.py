"""The routing core: queue choice, agent choice, and capacity never exceeded (property-tested)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from services.router.domain.model import AgentSlot, Presence, QueueRule, WaitingConversation
from services.router.domain.routing import assign, select_agent, select_queue

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MESSAGING = QueueRule("q-msg", "Messaging", frozenset({"chat", "in_app", "sms"}))
EMAIL = QueueRule("q-email", "Email", frozenset({"email"}))
GENERAL = QueueRule("q-gen", "General", frozenset(), is_default=True)
QUEUES = [GENERAL, MESSAGING, EMAIL]


def agent(
    aid: str,
    presence: Presence = Presence.ONLINE,
    load: int = 0,
    idle_min: int | None = None,
    queues: tuple[str, ...] = ("q-msg", "q-email", "q-gen"),
    cap: int = 3,
) -> AgentSlot:
    return AgentSlot(
        id=aid,
        presence=presence,
        capacity={"default": cap, "email": 5},
        queue_ids=frozenset(queues),
        load={"chat": load} if load else {},
        last_assigned_at=None if idle_min is None else NOW - timedelta(minutes=idle_min),
    )


def test_queue_is_chosen_by_channel_with_the_default_as_fallback() -> None:
    assert select_queue(QUEUES, "in_app") is MESSAGING
    assert select_queue(QUEUES, "email") is EMAIL
    assert select_queue(QUEUES, "voice") is GENERAL
    assert select_queue([MESSAGING], "voice") is None


def test_least_loaded_online_agent_wins() -> None:
    agents = [agent("a", load=2), agent("b", load=1), agent("c", Presence.AWAY)]
    chosen = select_agent(agents, "q-msg", "chat")
    assert chosen is not None and chosen.id == "b"


def test_longest_idle_breaks_a_tie() -> None:
    agents = [agent("a", idle_min=1), agent("b", idle_min=30), agent("c", idle_min=5)]
    chosen = select_agent(agents, "q-msg", "chat")
    assert chosen is not None and chosen.id == "b"


def test_never_assigned_counts_as_longest_idle() -> None:
    agents = [agent("a", idle_min=30), agent("b")]
    chosen = select_agent(agents, "q-msg", "chat")
    assert chosen is not None and chosen.id == "b"


def test_offline_away_full_and_foreign_queue_agents_are_skipped() -> None:
    agents = [
        agent("off", Presence.OFFLINE),
        agent("away", Presence.AWAY),
        agent("full", load=3),
        agent("other", queues=("q-email",)),
    ]
    assert select_agent(agents, "q-msg", "chat") is None


def test_capacity_is_per_channel() -> None:
    a = agent("a", load=3)  # chat full
    assert select_agent([a], "q-email", "email") is a


def test_assign_queues_everything_and_assigns_until_capacity_runs_out() -> None:
    waiting = [WaitingConversation(f"c{i}", "chat", None) for i in range(5)]
    agents = [agent("a", cap=2), agent("b", cap=1)]
    assignments, queued = assign(waiting, QUEUES, agents, NOW)
    assert [x.conversation_id for x in assignments] == ["c0", "c1", "c2"]
    assert set(queued.values()) == {"q-msg"}
    assert {x.agent_id for x in assignments} == {"a", "b"}


channels = st.sampled_from(["chat", "in_app", "sms", "email", "voice"])
agent_specs = st.lists(
    st.tuples(st.sampled_from(list(Presence)), st.integers(0, 4), st.integers(0, 3)), min_size=0, max_size=6
)


@given(agent_specs, st.lists(channels, max_size=40))
def test_assignment_never_exceeds_capacity_never_picks_unavailable_and_leaves_no_idle_room(
    specs: list[tuple[Presence, int, int]], arrivals: list[str]
) -> None:
    agents = [
        AgentSlot(
            f"a{i}",
            presence,
            {"default": cap, "email": cap},
            frozenset({"q-msg", "q-email", "q-gen"}),
            {"chat": min(load, cap)} if load else {},
        )
        for i, (presence, cap, load) in enumerate(specs)
    ]
    before = {a.id: dict(a.load) for a in agents}
    waiting = [WaitingConversation(f"c{i}", ch, None) for i, ch in enumerate(arrivals)]
    assignments, queued = assign(waiting, QUEUES, agents, NOW)

    assert len({x.conversation_id for x in assignments}) == len(assignments)  # never assigned twice
    by_id = {a.id: a for a in agents}
    for x in assignments:
        assert by_id[x.agent_id].presence is Presence.ONLINE
    for a in agents:
        for ch, n in a.load.items():
            assert n <= max(a.capacity_for(ch), before[a.id].get(ch, 0))
    assigned = {x.conversation_id for x in assignments}
    for conv in waiting:
        if conv.id not in assigned:
            # left waiting only because no online agent of its queue had room on its channel
            assert select_agent(agents, queued[conv.id] or "", conv.channel) is None
