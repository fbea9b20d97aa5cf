"""The routing engine, one scenario per behaviour: strategies, tier priority, sticky fallback, offers,
overflow, business hours, transfers, presence."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.router.domain.errors import InvalidCommand
from services.router.domain.model import Presence
from services.router.domain.routing.capacity import Profile
from services.router.domain.routing.decisions import (
    Assigned,
    AutoAcknowledged,
    Escalated,
    Offered,
    PresenceChanged,
    Unassigned,
)
from services.router.domain.routing.engine import RoutingEngine
from services.router.domain.routing.hours import BusinessHours
from services.router.domain.routing.specs import AgentSpec, QueueSpec, Step, Strategy

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC).timestamp()  # a Monday, 10:00 UTC


def engine(
    *queues: QueueSpec, agents: int = 2, capacity: int = 1, queue_ids: tuple[str, ...] = ("q",), online: bool = True
) -> RoutingEngine:
    e = RoutingEngine()
    for q in queues or (QueueSpec("q", is_default=True),):
        e.upsert_queue(q)
    for i in range(agents):
        e.upsert_agent(AgentSpec(f"a{i}", frozenset(queue_ids), {"default": capacity}))
        if online:
            e.set_presence(f"a{i}", Presence.ONLINE, T0)
    return e


def assigned(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.conversation_id, d.agent_id) for d in decisions if isinstance(d, Assigned)]


def test_least_loaded_then_longest_idle() -> None:
    e = engine(agents=3, capacity=3)
    got = [assigned(e.arrive(f"c{i}", "chat", {}, T0 + i))[0][1] for i in range(6)]
    assert got == ["a0", "a1", "a2", "a0", "a1", "a2"], "spread by load, ties to whoever waited longest"


def test_round_robin_rotates_regardless_of_load() -> None:
    e = engine(QueueSpec("q", is_default=True, strategy=Strategy.ROUND_ROBIN), agents=3, capacity=5)
    e.arrive("c0", "chat", {}, T0)
    e.resolve("c0", T0 + 1)  # a0 is idle again but the rotation moves on
    got = [assigned(e.arrive(f"c{i}", "chat", {}, T0 + 2 + i))[0][1] for i in range(1, 5)]
    assert got == ["a1", "a2", "a0", "a1"]


def test_higher_tiers_first_but_nobody_starves() -> None:
    e = engine(agents=1, capacity=1)
    e.arrive("busy", "chat", {}, T0)
    e.arrive("standard", "chat", {"tier": "standard"}, T0 + 1)
    e.arrive("gold", "chat", {"tier": "gold"}, T0 + 10)
    assert [w.conversation_id for w in e.waiting()] == ["gold", "standard"]
    # gold customers keep arriving, but one who comes more than the gold boost (300 s) later is behind
    e.arrive("gold-late", "chat", {"tier": "gold"}, T0 + 1 + 301)
    assert [w.conversation_id for w in e.waiting()] == ["gold", "standard", "gold-late"]
    assert assigned(e.resolve("busy", T0 + 400)) == [("gold", "a0")]


def test_queue_by_rule_with_default_fallback() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("vip", rule={"attr": "tier", "in": ["gold", "platinum"]}, order=0))
    e.upsert_queue(
        QueueSpec("fr", rule={"all": [{"attr": "language", "eq": "fr"}, {"attr": "channel", "ne": "voice"}]}, order=1)
    )
    e.upsert_queue(QueueSpec("general", is_default=True))
    assert e.select_queue({"tier": "gold", "language": "fr"}).id == "vip"  # type: ignore[union-attr]
    assert e.select_queue({"language": "fr", "channel": "chat"}).id == "fr"  # type: ignore[union-attr]
    assert e.select_queue({"language": "fr", "channel": "voice"}).id == "general"  # type: ignore[union-attr]


def test_skills_and_languages_limit_who_can_take_work() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    e.upsert_agent(
        AgentSpec("junior", frozenset({"q"}), {"default": 3}, skills={"billing": 1}, languages=frozenset({"en"}))
    )
    e.upsert_agent(
        AgentSpec("senior", frozenset({"q"}), {"default": 3}, skills={"billing": 3}, languages=frozenset({"en", "fr"}))
    )
    for a in ("junior", "senior"):
        e.set_presence(a, Presence.ONLINE, T0)
    assert assigned(e.arrive("c1", "chat", {"skills": {"billing": 2}}, T0)) == [("c1", "senior")]
    assert assigned(e.arrive("c2", "chat", {"language": "fr"}, T0)) == [("c2", "senior")]
    assert assigned(e.arrive("c3", "chat", {}, T0)) == [("c3", "junior")]


def test_capacity_is_per_channel() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    e.upsert_agent(AgentSpec("a", frozenset({"q"}), {"chat": 1, "email": 2, "voice": 1}))
    e.set_presence("a", Presence.ONLINE, T0)
    assert assigned(e.arrive("chat1", "chat", {}, T0))
    assert not assigned(e.arrive("chat2", "chat", {}, T0))
    assert assigned(e.arrive("mail1", "email", {}, T0)) and assigned(e.arrive("mail2", "email", {}, T0))
    assert not assigned(e.arrive("mail3", "email", {}, T0))
    assert e.agent_load("a") == {"chat": 1, "email": 2}


def test_sticky_returns_to_the_previous_agent_and_falls_back_after_the_wait_limit() -> None:
    e = engine(QueueSpec("q", is_default=True, strategy=Strategy.STICKY, sticky_wait_s=60), agents=2, capacity=1)
    assert assigned(e.arrive("other", "chat", {}, T0)) == [("other", "a0")]
    # a returning customer of a1 goes back to a1 although a0... is busy anyway; make a0 free and load a1 instead
    e.resolve("other", T0 + 1)
    assert assigned(e.arrive("busy", "chat", {}, T0 + 2, previous_agent="a1")) == [("busy", "a1")]
    # returning customer of a1 while a1 is busy: held for a1 although a0 is free
    assert assigned(e.arrive("returning", "chat", {}, T0 + 3, previous_agent="a1")) == []
    # a1 frees up within the wait limit: it goes to a1
    assert assigned(e.resolve("busy", T0 + 10)) == [("returning", "a1")]
    # next returning customer of a1 waits, but a1 stays busy: after 60 s anyone may take it
    assert assigned(e.arrive("patient", "chat", {}, T0 + 20, previous_agent="a1")) == []
    assert assigned(e.tick(T0 + 79)) == []
    assert assigned(e.tick(T0 + 81)) == [("patient", "a0")]


def test_sticky_does_not_wait_for_an_offline_agent() -> None:
    e = engine(QueueSpec("q", is_default=True, strategy=Strategy.STICKY), agents=2, capacity=1)
    e.set_presence("a1", Presence.OFFLINE, T0)
    assert assigned(e.arrive("c", "chat", {}, T0 + 1, previous_agent="a1")) == [("c", "a0")]


def test_offer_accept_decline_and_timeout_move_to_the_next_agent() -> None:
    e = engine(QueueSpec("q", is_default=True, offer_timeout_s=30, max_declines=5), agents=3, capacity=1)
    (offer,) = [d for d in e.arrive("c", "chat", {}, T0) if isinstance(d, Offered)]
    assert offer.agent_id == "a0" and offer.expires_at == T0 + 30
    out = e.decline("a0", "c", T0 + 5)
    assert Unassigned("c", "a0", "declined") in out
    (offer,) = [d for d in out if isinstance(d, Offered)]
    assert offer.agent_id == "a1"
    out = e.tick(T0 + 5 + 31)  # a1 does not answer
    assert Unassigned("c", "a1", "offer_timeout") in out
    (offer,) = [d for d in out if isinstance(d, Offered)]
    assert offer.agent_id == "a2"
    assert assigned(e.accept("a2", "c", T0 + 40)) == [("c", "a2")]
    with pytest.raises(InvalidCommand):
        e.accept("a2", "c", T0 + 41)


def test_repeated_declines_escalate_to_the_overflow_queue() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("tier1", is_default=True, offer_timeout_s=30, max_declines=2, overflow_to="tier2"))
    e.upsert_queue(QueueSpec("tier2", rule={"attr": "never", "exists": True}))
    for name, queues in (("a", {"tier1"}), ("b", {"tier1"}), ("lead", {"tier2"})):
        e.upsert_agent(AgentSpec(name, frozenset(queues), {"default": 1}))
        e.set_presence(name, Presence.ONLINE, T0)
    e.arrive("c", "chat", {}, T0)
    e.decline("a", "c", T0 + 1)
    out = e.decline("b", "c", T0 + 2)
    assert Escalated("c", "tier1", "tier2", "declined_too_often") in out
    assert [d.agent_id for d in out if isinstance(d, Offered)] == []  # tier2 has no offers configured
    assert assigned(out) == [("c", "lead")]


def test_overflow_after_a_wait_threshold_widens_the_target() -> None:
    e = RoutingEngine()
    e.upsert_queue(
        QueueSpec("billing", rule={"attr": "topic", "eq": "billing"}, overflow_after_s=120, overflow_to="general")
    )
    e.upsert_queue(QueueSpec("general", is_default=True))
    e.upsert_agent(AgentSpec("biller", frozenset({"billing"}), {"default": 1}))
    e.upsert_agent(AgentSpec("generalist", frozenset({"general"}), {"default": 1}))
    for a in ("biller", "generalist"):
        e.set_presence(a, Presence.ONLINE, T0)
    e.arrive("first", "chat", {"topic": "billing"}, T0)
    assert assigned(e.arrive("second", "chat", {"topic": "billing"}, T0 + 1)) == []
    assert e.tick(T0 + 100) == []
    out = e.tick(T0 + 122)
    assert Escalated("second", "billing", "general", "waited_too_long") in out
    assert assigned(out) == [("second", "generalist")]


def test_outside_business_hours_work_waits_with_an_auto_acknowledgement() -> None:
    hours = BusinessHours.parse(
        "Europe/Paris", {"mon": ["09:00-17:00"], "tue": ["09:00-17:00"]}, holidays=["2026-12-25"]
    )
    e = engine(QueueSpec("q", is_default=True, hours=hours), agents=1, capacity=3)
    evening = datetime(2026, 11, 23, 18, 30, tzinfo=UTC).timestamp()  # 19:30 in Paris: closed
    out = e.arrive("late", "email", {}, evening)
    (ack,) = [d for d in out if isinstance(d, AutoAcknowledged)]
    assert ack.expected_response_at == datetime(2026, 11, 24, 8, 0, tzinfo=UTC).timestamp()  # Tue 09:00 Paris
    assert assigned(out) == []
    assert assigned(e.tick(datetime(2026, 11, 24, 7, 59, tzinfo=UTC).timestamp())) == []
    assert assigned(e.tick(datetime(2026, 11, 24, 8, 0, 1, tzinfo=UTC).timestamp())) == [("late", "a0")]
    assert not hours.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=UTC))


def test_transfers_to_an_agent_and_to_a_queue() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("front", is_default=True))
    e.upsert_queue(QueueSpec("back", rule={"attr": "x", "exists": True}))
    for name, queues in (("f1", {"front"}), ("f2", {"front"}), ("b1", {"back"})):
        e.upsert_agent(AgentSpec(name, frozenset(queues), {"default": 2}))
        e.set_presence(name, Presence.ONLINE, T0)
    e.arrive("c", "chat", {}, T0)
    out = e.transfer_to_agent("c", "f2", T0 + 1)
    assert Unassigned("c", "f1", "transferred") in out and assigned(out) == [("c", "f2")]
    out = e.transfer_to_queue("c", "back", T0 + 2)
    assert Unassigned("c", "f2", "transferred") in out and assigned(out) == [("c", "b1")]
    assert e.agent_work("f2") == set() and e.agent_work("b1") == {"c"}


def test_an_agent_going_offline_puts_their_conversations_back_at_their_original_priority() -> None:
    e = engine(agents=2, capacity=1)
    e.arrive("old", "chat", {}, T0)  # a0
    e.arrive("mid", "chat", {}, T0 + 1)  # a1
    e.arrive("new", "chat", {}, T0 + 2)  # waits
    out = e.set_presence("a0", Presence.OFFLINE, T0 + 3)
    assert Unassigned("old", "a0", "agent_offline") in out
    assert [w.conversation_id for w in e.waiting()] == ["old", "new"], "old keeps its place ahead of new"
    assert assigned(e.resolve("mid", T0 + 4)) == [("old", "a1")]


def test_manual_queues_wait_for_a_claim() -> None:
    e = engine(QueueSpec("q", is_default=True, strategy=Strategy.MANUAL), agents=1, capacity=2)
    assert assigned(e.arrive("c", "chat", {}, T0)) == []
    assert assigned(e.claim("a0", "c", T0 + 1)) == [("c", "a0")]
    with pytest.raises(InvalidCommand):
        e.claim("a0", "c", T0 + 2)


def test_away_agents_keep_their_work_but_get_no_more() -> None:
    e = engine(agents=1, capacity=3)
    e.arrive("c1", "chat", {}, T0)
    e.set_presence("a0", Presence.AWAY, T0 + 1)
    assert assigned(e.arrive("c2", "chat", {}, T0 + 2)) == []
    assert e.agent_work("a0") == {"c1"}
    assert assigned(e.set_presence("a0", Presence.ONLINE, T0 + 3)) == [("c2", "a0")]


def _voice_desk(agents: int = 2) -> RoutingEngine:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    for i in range(agents):
        e.upsert_agent(AgentSpec(f"a{i}", frozenset({"q"}), {"default": 3, "voice": 1}))
        e.set_presence(f"a{i}", Presence.ONLINE, T0)
    return e


def test_a_call_on_a_chat_moves_the_work_to_voice_and_back() -> None:
    e = _voice_desk()
    assert assigned(e.arrive("c0", "whatsapp", {}, T0)) == [("c0", "a0")]
    switched = e.switch_channel("c0", "voice", T0 + 1)
    assert assigned(switched) == [("c0", "a0")]  # the same representative takes the call
    assert e.agent_load("a0") == {"whatsapp": 0, "voice": 1}
    # a second call: a0 is on one, so a1 takes it
    assert assigned(e.arrive("c1", "voice", {}, T0 + 2)) == [("c1", "a1")]
    # a third: nobody has voice room, it waits
    assert assigned(e.arrive("c2", "voice", {}, T0 + 3)) == []
    # the first call ends: back to WhatsApp, and the waiting call goes to a0 at once
    back = e.switch_channel("c0", "whatsapp", T0 + 4)
    assert ("c2", "a0") in assigned(back) and ("c0", "a0") in assigned(back)
    assert e.agent_load("a0") == {"whatsapp": 1, "voice": 1}


def test_a_call_whose_agent_has_no_voice_room_waits_for_them_or_another() -> None:
    e = _voice_desk(agents=1)
    e.arrive("c0", "voice", {}, T0)  # a0 on a call
    e.arrive("c1", "chat", {}, T0 + 1)
    out = e.switch_channel("c1", "voice", T0 + 2)
    assert [d.reason for d in out if isinstance(d, Unassigned)] == ["channel_switched"]
    assert e.work("c1").agent_id is None and e.work("c1").previous_agent == "a0"  # type: ignore[union-attr]
    assert assigned(e.resolve("c0", T0 + 3)) == [("c1", "a0")]


def test_a_call_put_through_and_not_answered_goes_to_the_next_agent() -> None:
    e = _voice_desk()
    (first,) = assigned(e.arrive("c0", "voice", {}, T0))
    out = e.decline(first[1], "c0", T0 + 20, reason="no_answer", offered_only=False)
    assert [d.reason for d in out if isinstance(d, Unassigned)] == ["no_answer"]
    assert assigned(out) == [("c0", "a1" if first[1] == "a0" else "a0")]
    with pytest.raises(InvalidCommand):
        e.decline("a1", "c0", T0 + 21)  # an assignment is not an offer: only offers are declined


def test_an_sla_escalation_moves_waiting_work_ahead_and_to_the_escalation_queue() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    e.upsert_queue(QueueSpec("esc", rule={"attr": "never", "eq": 1}))
    e.upsert_agent(AgentSpec("a0", frozenset({"q"}), {"default": 1}))
    e.upsert_agent(AgentSpec("boss", frozenset({"esc"}), {"default": 1}))
    e.arrive("c0", "chat", {}, T0)
    e.arrive("c1", "chat", {}, T0 + 1)
    out = e.escalate("c1", "esc", T0 + 100)
    assert [(d.from_queue, d.to_queue) for d in out if isinstance(d, Escalated)] == [("q", "esc")]
    assert e.work("c1").queue_id == "esc"  # type: ignore[union-attr]
    assert assigned(e.set_presence("boss", Presence.ONLINE, T0 + 101)) == [("c1", "boss")]
    # raise priority only: c2 jumps ahead of c0 in the same queue
    e.arrive("c2", "chat", {}, T0 + 200)
    e.escalate("c2", None, T0 + 300)
    assert [w.conversation_id for w in e.waiting("q")] == ["c2", "c0"]


def test_a_sticky_hold_does_not_stop_a_queue_that_is_not_sticky() -> None:
    """Found by the stateful test: a conversation held for its previous agent in a sticky queue, then
    transferred to a least-loaded queue, waited there while that very agent had room (the hold belongs to the
    sticky queue, not to the work)."""
    t0 = 1_795_000_000.0
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("main", is_default=True, strategy=Strategy.STICKY, sticky_wait_s=20))
    e.upsert_queue(QueueSpec("wide", rule={"attr": "never", "exists": True}))
    e.upsert_agent(AgentSpec("a2", frozenset({"main"}), {"chat": 2, "email": 0}))
    e.upsert_agent(AgentSpec("a3", frozenset({"main", "wide"}), {"chat": 1, "email": 2}))
    e.set_presence("a3", Presence.ONLINE, t0)
    e.arrive("c1", "chat", {}, t0)
    e.arrive("c2", "email", {}, t0, previous_agent="a3")
    e.transfer_to_queue("c2", "main", t0)
    decisions = e.transfer_to_queue("c2", "wide", t0)
    work = e.work("c2")
    assert work is not None and work.agent_id == "a3", decisions


def _offers(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.conversation_id, d.agent_id) for d in decisions if isinstance(d, Offered)]


def test_a_missed_offer_sets_the_agent_away_and_they_get_it_again_once_back_online() -> None:
    e = engine(QueueSpec("q", is_default=True, offer_timeout_s=30), agents=1, capacity=2)
    assert _offers(e.arrive("c", "chat", {}, T0)) == [("c", "a0")]
    out = e.tick(T0 + 30)
    assert PresenceChanged("a0", "away", "missed_offer") in out
    assert Unassigned("c", "a0", "offer_timeout") in out
    assert e.presence("a0") is Presence.AWAY and _offers(out) == []
    assert [w.conversation_id for w in e.waiting()] == ["c"]
    out = e.set_presence("a0", Presence.ONLINE, T0 + 600)
    assert _offers(out) == [("c", "a0")]


def test_a_missed_offer_goes_to_the_next_agent_at_once() -> None:
    e = engine(QueueSpec("q", is_default=True, offer_timeout_s=30), agents=2, capacity=1)
    e.arrive("c", "chat", {}, T0)
    out = e.tick(T0 + 30)
    assert _offers(out) == [("c", "a1")] and e.presence("a0") is Presence.AWAY


def test_going_away_withdraws_open_offers_but_keeps_accepted_work() -> None:
    e = engine(QueueSpec("q", is_default=True, offer_timeout_s=30), agents=2, capacity=2)
    e.arrive("held", "chat", {}, T0)  # a0
    e.accept("a0", "held", T0 + 1)
    e.arrive("x", "chat", {}, T0 + 2)  # a1 (least loaded)
    e.arrive("open", "chat", {}, T0 + 3)  # a0 and a1 have one each: a0, idle longer
    assert e.work("open").agent_id == "a0"  # type: ignore[union-attr]
    out = e.set_presence("a0", Presence.AWAY, T0 + 4)
    assert Unassigned("open", "a0", "offer_withdrawn") in out
    assert _offers(out) == [("open", "a1")]
    assert e.agent_work("a0") == {"held"}


def test_missed_offers_may_count_as_declines_instead_and_a_decline_excludes_only_for_a_while() -> None:
    e = engine(
        QueueSpec("q", is_default=True, offer_timeout_s=30, on_missed_offer="decline", decline_exclusion_s=300),
        agents=1,
        capacity=1,
    )
    e.arrive("c", "chat", {}, T0)
    out = e.tick(T0 + 30)
    assert e.presence("a0") is Presence.ONLINE and _offers(out) == []  # excluded for now, still online
    assert e.tick(T0 + 329) == []
    assert _offers(e.tick(T0 + 330)) == [("c", "a0")]  # a one-agent shift never strands its queue
    out = e.decline("a0", "c", T0 + 331)
    assert _offers(out) == []
    assert _offers(e.tick(T0 + 331 + 300)) == [("c", "a0")]


def test_a_customer_goes_to_their_owner_then_their_last_agent_then_anyone() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True, strategy=Strategy.STICKY, owner_wait_s=120, sticky_wait_s=60))
    for name in ("owner", "last", "other"):
        e.upsert_agent(AgentSpec(name, frozenset({"q"}), {"default": 1}))
        e.set_presence(name, Presence.ONLINE, T0)
    for busy, name in (("b1", "owner"), ("b2", "last")):  # both preferred agents are busy
        e.arrive(busy, "chat", {"owner_agent_id": name}, T0)
    assert e.agent_work("owner") == {"b1"} and e.agent_work("last") == {"b2"}
    out = e.arrive("c", "chat", {"owner_agent_id": "owner"}, T0 + 1, previous_agent="last")
    assert assigned(out) == []  # held for the owner, though "other" is free
    assert e.tick(T0 + 120) == []
    out = e.tick(T0 + 121)  # the owner's wait is over: held for the last agent now
    assert assigned(out) == []
    assert assigned(e.tick(T0 + 121 + 60)) == [("c", "other")]  # then anyone


def test_a_free_owner_gets_their_customer_at_once_in_any_queue_and_the_assignment_says_why() -> None:
    e = engine(agents=3, capacity=2)  # least_loaded
    e.arrive("x", "chat", {}, T0)  # a0 has one now, a1 and a2 none
    out = e.arrive("c", "chat", {"owner_agent_id": "a0"}, T0 + 1)
    (a,) = [d for d in out if isinstance(d, Assigned)]
    assert (a.agent_id, a.reason) == ("a0", "owner")


def test_an_owner_who_is_not_online_is_not_waited_for() -> None:
    e = engine(agents=2, capacity=1)
    e.set_presence("a0", Presence.AWAY, T0)
    assert assigned(e.arrive("c", "chat", {"owner_agent_id": "a0"}, T0 + 1)) == [("c", "a1")]


def test_a_profile_edit_swaps_the_tier_head_start_and_restarts_the_owner_preference() -> None:
    from services.router.domain.routing.facts import with_customer, work_fact

    e = engine(agents=1, capacity=0)
    e.arrive("c", "chat", {"tier": "gold", "owner_agent_id": "a0"}, T0)
    work = e.work("c")
    assert work is not None
    fact = work_fact(work) | {"stage": 1}
    edited = with_customer(fact, {"tier": "standard", "owner_agent_id": "someone", "language": "fr"})
    assert edited["virtual_time"] == T0  # gold's 300 s head start is gone
    assert (edited["owner"], edited["stage"], edited["language"]) == ("someone", 0, "fr")
    assert with_customer(edited, {"tier": "platinum", "owner_agent_id": "someone"})["stage"] == 0


def _profiled(profile: Profile) -> RoutingEngine:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    e.upsert_agent(AgentSpec("a", frozenset({"q"}), {}, profile=profile))
    e.set_presence("a", Presence.ONLINE, T0)
    return e


def test_an_agent_on_a_call_gets_no_chat_under_the_default_profile() -> None:
    e = _profiled(Profile("standard"))
    assert assigned(e.arrive("call", "voice", {}, T0)) == [("call", "a")]
    assert assigned(e.arrive("chat", "chat", {}, T0 + 1)) == []
    assert assigned(e.resolve("call", T0 + 60)) == [("chat", "a")]  # the call over, the chat goes to them


def test_a_profile_may_allow_chats_during_a_call() -> None:
    e = _profiled(Profile("blended", capacity=3, exclusive=frozenset()))
    e.arrive("call", "voice", {}, T0)
    assert assigned(e.arrive("chat", "chat", {}, T0 + 1)) == [("chat", "a")]


def test_capacity_is_in_weighted_units_across_channels() -> None:
    """3 units: two emails (0.5 each) and two chats fit; a third chat does not; an email maximum holds."""
    e = _profiled(Profile("standard", capacity=3, max_per_channel={"email": 2}))
    for i in range(2):
        assert assigned(e.arrive(f"e{i}", "email", {}, T0 + i)) == [(f"e{i}", "a")]
    assert assigned(e.arrive("e2", "email", {}, T0 + 2)) == []  # the email maximum
    for i in range(2):
        assert assigned(e.arrive(f"c{i}", "chat", {}, T0 + 3 + i)) == [(f"c{i}", "a")]
    assert assigned(e.arrive("c2", "chat", {}, T0 + 5)) == []  # 1 + 2 = 3 units held
    assert e.agent_units("a") == 3.0
    assert assigned(e.resolve("e0", T0 + 6)) == [("e2", "a")]  # half a unit free: the waiting email fits


def test_a_callback_for_tomorrow_waits_for_its_window_without_holding_anyone() -> None:
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True))
    e.upsert_agent(AgentSpec("a", frozenset({"q"}), {"default": 3, "voice": 1}))
    e.set_presence("a", Presence.ONLINE, T0)
    tomorrow = T0 + 86_400 + 4 * 3600
    assert assigned(e.arrive("callback", "voice", {"not_before": tomorrow}, T0)) == []
    assert e.agent_load("a") == {}  # the agent's only voice slot stays free
    assert assigned(e.arrive("call", "voice", {}, T0 + 1)) == [("call", "a")]
    e.resolve("call", T0 + 600)
    assert e.tick(tomorrow - 1) == []
    assert assigned(e.tick(tomorrow)) == [("callback", "a")]


def test_a_deadline_queue_serves_the_nearest_promise_first_and_nothing_starves() -> None:
    """Chat's first response is due in 2 minutes, email's in 24 hours: a new chat goes before a new email, but
    an email close to its deadline goes before a new chat."""
    e = RoutingEngine()
    e.upsert_queue(QueueSpec("q", is_default=True, priority="deadline"))
    one_at_a_time = Profile("one", capacity=1, weights={"default": 1})
    e.upsert_agent(AgentSpec("a", frozenset({"q"}), {}, profile=one_at_a_time))
    day = 24 * 3600.0
    e.arrive("old-email", "email", {}, T0 - day + 60)  # due in a minute
    e.arrive("email", "email", {}, T0)
    e.arrive("chat", "chat", {}, T0 + 1)
    assert [w.conversation_id for w in e.waiting()] == ["old-email", "chat", "email"]
    out = e.set_presence("a", Presence.ONLINE, T0 + 2)
    assert assigned(out) == [("old-email", "a")]
    assert assigned(e.resolve("old-email", T0 + 3)) == [("chat", "a")]


def test_a_three_step_queue_widens_at_its_times_and_keeps_the_conversations_place() -> None:
    """Preferred agents for a minute, then billing ≥ 3 until three minutes, then anyone in the queue."""
    e = RoutingEngine()
    steps = (Step(0, agents=frozenset({"pref"})), Step(60, skills={"billing": 3}), Step(180))
    e.upsert_queue(QueueSpec("q", is_default=True, steps=steps))
    for name, skills in (("pref", {}), ("expert", {"billing": 3}), ("novice", {"billing": 1})):
        e.upsert_agent(AgentSpec(name, frozenset({"q"}), {"default": 1}, skills=skills))
    e.set_presence("pref", Presence.ONLINE, T0)
    e.arrive("busy", "chat", {}, T0)  # the preferred agent is busy from now on
    e.set_presence("expert", Presence.ONLINE, T0)
    e.set_presence("novice", Presence.ONLINE, T0)
    e.arrive("first", "chat", {}, T0 + 1)
    e.arrive("second", "chat", {}, T0 + 2)
    assert [w.conversation_id for w in e.waiting()] == ["first", "second"]  # nobody but "pref" yet
    assert e.tick(T0 + 60) == []
    assert assigned(e.tick(T0 + 61)) == [("first", "expert")]  # the skill step: the expert, the first in line
    assert assigned(e.tick(T0 + 181)) == []  # "second" reached the skill step too: nobody free has it
    assert assigned(e.tick(T0 + 182)) == [("second", "novice")]  # anyone now; "second" kept its place


def test_a_step_naming_another_queue_gives_the_work_to_that_queues_agents_only_then_widens_back() -> None:
    """Anyone of the queue for a minute, then only the agents of the "tier2" team queue (whose rule takes no work
    of its own), then after three minutes anyone of the queue again."""
    e = RoutingEngine()
    steps = (Step(0), Step(60, queue="tier2"), Step(180))
    e.upsert_queue(QueueSpec("q", is_default=True, steps=steps))
    e.upsert_queue(QueueSpec("tier2", rule={"any": []}))
    e.upsert_agent(AgentSpec("front", frozenset({"q"}), {"default": 1}))
    e.upsert_agent(AgentSpec("expert", frozenset({"tier2"}), {"default": 1}))
    for agent in ("front", "expert"):
        e.set_presence(agent, Presence.ONLINE, T0)
    assert assigned(e.arrive("busy", "chat", {}, T0)) == [("busy", "front")]
    assert assigned(e.arrive("first", "chat", {}, T0 + 1)) == []  # the expert is not of the queue yet
    assert assigned(e.tick(T0 + 60)) == []
    assert assigned(e.tick(T0 + 61)) == [("first", "expert")]  # the team's step
    e.arrive("third", "chat", {}, T0 + 62)
    e.arrive("fourth", "chat", {}, T0 + 65)
    assert assigned(e.resolve("first", T0 + 100)) == []  # the expert is free, but "third" is at the first step
    assert assigned(e.tick(T0 + 122)) == [("third", "expert")]
    # "fourth" is at the team's step from T0 + 125: the front agent, free again, may not take it (the step's
    # requirements replace the first step's) ...
    e.tick(T0 + 125)
    assert e.waiting_counts() == {"q": 1, "tier2": 0}  # it waits in its own queue all along
    assert assigned(e.resolve("busy", T0 + 130)) == []
    assert [w.conversation_id for w in e.waiting()] == ["fourth"]
    # ... until the last step widens back to anyone of the queue
    assert assigned(e.tick(T0 + 245)) == [("fourth", "front")]
    assert e.waiting_counts() == {"q": 0, "tier2": 0}
