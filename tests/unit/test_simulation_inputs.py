"""What a simulation reads: the trace file (JSON Lines, docs/simulation.md), the desk configuration, synthetic
traffic, shifts and duration distributions. Bad input is refused with the line or field and what is wrong."""

from __future__ import annotations

import json
import random
import statistics
from datetime import UTC, datetime
from typing import Any

import pytest

from services.router.domain.model import Presence
from services.router.simulation.desk import DeskError, desk_of
from services.router.simulation.distributions import Distribution, distribution
from services.router.simulation.shifts import parse_shifts, per_hour_spans
from services.router.simulation.trace import TraceError, read_trace
from services.router.simulation.traffic import traffic_of
from services.router.simulation.workload import Window

MONDAY = datetime(2026, 1, 5, tzinfo=UTC).timestamp()


def lines(*records: Any) -> list[str]:
    return [r if isinstance(r, str) else json.dumps(r) for r in records]


# -- the trace ------------------------------------------------------------------------------------------------
def test_a_trace_gives_arrivals_in_time_order_and_presence_changes() -> None:
    workload = read_trace(
        lines(
            {"at": "2026-01-05T09:00:10+01:00", "id": "late", "channel": "email", "handle_s": 600},
            {"at": "2026-01-05T07:59:00Z", "id": "early", "channel": "chat", "tier": "gold", "tags": ["billing"],
             "handle_s": 240, "patience_s": 300, "previous_agent": "ada"},
            "",
            {"at": 30, "type": "presence", "agent_id": "ada", "presence": "away"},
        ),
    )  # fmt: skip
    assert workload.window.start == datetime(2026, 1, 5, 7, tzinfo=UTC).timestamp(), "the first arrival's hour"
    assert workload.window.hours == 2
    early, late = workload.arrivals
    assert (early.conversation_id, late.conversation_id) == ("early", "late")
    assert early.attrs == {"tier": "gold", "tags": ["billing"]}
    assert (early.handle_s, early.patience_s, early.previous_agent) == (240, 300, "ada")
    assert late.at == datetime(2026, 1, 5, 8, 0, 10, tzinfo=UTC).timestamp()
    assert late.patience_s is None, "no patience given: never abandons"
    (change,) = workload.presence
    assert (change.at, change.agent_id, change.presence) == (workload.window.start + 30, "ada", Presence.AWAY)


def test_seconds_count_from_the_given_start_and_missing_durations_are_drawn() -> None:
    workload = read_trace(
        lines({"at": 0, "channel": "chat"}, {"at": 7200.5, "channel": "chat"}),
        start=MONDAY,
        handle=Distribution("fixed", 99.0),
        patience=Distribution("fixed", 42.0),
    )
    assert [a.at - MONDAY for a in workload.arrivals] == [0, 7200.5]
    assert [(a.handle_s, a.patience_s) for a in workload.arrivals] == [(99.0, 42.0), (99.0, 42.0)]
    assert [a.conversation_id for a in workload.arrivals] == ["t1", "t2"], "named after their line"
    assert workload.window.hours == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "trace:1: not JSON"),
        ("[1, 2]", "trace:1: a line is one JSON object"),
        ({"channel": "chat", "handle_s": 1}, "trace:1: at: required"),
        ({"at": "2026-01-05T08:00:00", "channel": "chat", "handle_s": 1}, "trace:1: at: give the offset"),
        ({"at": "yesterday", "channel": "chat", "handle_s": 1}, "trace:1: at: not an ISO 8601 time"),
        ({"at": -5, "channel": "chat", "handle_s": 1}, "trace:1: at: seconds from the window's start are not negative"),
        ({"at": 0, "handle_s": 1}, "trace:1: channel: required"),
        ({"at": 0, "channel": "chat"}, "trace:1: handle_s: required when no handle-time distribution is given"),
        ({"at": 0, "channel": "chat", "handle_s": 0}, "trace:1: handle_s: a positive number of seconds"),
        ({"at": 0, "channel": "chat", "handle_s": 1, "patience_s": "soon"}, "trace:1: patience_s: a positive"),
        ({"at": 0, "channel": "chat", "handle_s": 1, "tier": 3}, "trace:1: tier: a str"),
        ({"at": 0, "channel": "chat", "handle_s": 1, "colour": "red"}, "trace:1: unknown field(s) for arrival: colour"),
        ({"v": 2, "at": 0, "channel": "chat", "handle_s": 1}, "trace:1: unknown trace version 2"),
        ({"at": 0, "type": "hangup"}, "trace:1: type: 'arrival' or 'presence'"),
        ({"at": 0, "type": "presence", "presence": "online"}, "trace:1: agent_id: required"),
        ({"at": 0, "type": "presence", "agent_id": "ada", "presence": "busy"}, "trace:1: presence: online, away or"),
    ],
)
def test_a_bad_line_is_refused_with_its_number_and_what_is_wrong(line: Any, expected: str) -> None:
    with pytest.raises(TraceError) as caught:
        read_trace(lines(line), start=MONDAY)
    assert str(caught.value).startswith(expected), str(caught.value)


def test_every_bad_line_is_reported_at_once() -> None:
    good = {"at": 0, "channel": "chat", "handle_s": 1}
    with pytest.raises(TraceError) as caught:
        read_trace(lines(good, {"at": 1}, good, "oops", good), name="week.jsonl", start=MONDAY)
    assert caught.value.problems == [
        'week.jsonl:2: channel: required, e.g. "chat"',
        "week.jsonl:4: not JSON (Expecting value at column 1)",
    ]


def test_a_trace_refuses_repeated_ids_times_before_its_start_and_emptiness() -> None:
    with pytest.raises(TraceError, match=r"trace:2: id 'c1' appears twice"):
        read_trace(lines(*[{"at": 0, "id": "c1", "channel": "chat", "handle_s": 1}] * 2), start=MONDAY)
    with pytest.raises(TraceError, match=r"trace:1: at is before the window's start"):
        read_trace(lines({"at": "2026-01-04T23:00:00Z", "channel": "chat", "handle_s": 1}), start=MONDAY)
    with pytest.raises(TraceError, match=r"trace: no lines"):
        read_trace(["", "  "], start=MONDAY)


# -- the desk ---------------------------------------------------------------------------------------------------
DESK: dict[str, Any] = {
    "profiles": [{"id": "std", "name": "Standard", "capacity": 3, "weights": {"default": 1, "email": 0.5}}],
    "queues": [
        {
            "id": "billing",
            "name": "Billing",
            "channels": ["chat"],
            "routing": {"rule": {"attr": "tags", "has": "billing"}},
        },
        {
            "id": "care",
            "name": "Care",
            "is_default": True,
            "routing": {"offer_timeout_s": 30, "strategy": "round_robin"},
        },
    ],
    "agents": [
        {"id": "ada", "name": "Ada", "queue_ids": ["billing", "care"], "profile_id": "std", "skills": {"billing": 3}},
        {"id": "team", "name": "Team", "count": 3, "queue_ids": ["care"], "shifts": ["08:00-16:00"]},
    ],
}


def test_a_desk_is_read_as_the_api_shapes_it() -> None:
    desk = desk_of(DESK)
    billing, care = desk.queues
    assert billing.rule == {"all": [{"attr": "channel", "in": ["chat"]}, {"attr": "tags", "has": "billing"}]}
    assert care.is_default and care.offer_timeout_s == 30 and care.strategy.value == "round_robin"
    ada, team = desk.agents
    assert ada.spec.profile is not None and ada.spec.profile.capacity == 3
    assert ada.spec.skills == {"billing": 3}
    assert team.agent_ids() == ["team-1", "team-2", "team-3"]
    assert team.spec.capacity == {"default": 3, "email": 5, "voice": 1}, "the API's default capacity"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.update(colour="red"), "the desk: unknown field(s) colour"),
        (lambda d: d["queues"][0].update(id=None), "queues[0].id: required"),
        (lambda d: d["queues"][1]["routing"].update(strategy="random"), "queues[1]: 'random' is not a valid Strategy"),
        (lambda d: d["queues"][1]["routing"].update(rule={"attr": "tier", "like": "g"}), "queues[1]: invalid routing"),
        (lambda d: d["queues"][1]["routing"].update(steps=[{"after_s": 5}]), "the first step starts at 0 s"),
        (lambda d: d["queues"][1]["routing"].update(speed=1), "queues[1].routing: unknown field(s) speed"),
        (lambda d: d["queues"][0]["routing"].update(overflow_to="nowhere"), "overflow_to: no queue 'nowhere'"),
        (lambda d: d["agents"][0].update(queue_ids=["sales"]), "agents[0].queue_ids: no queue sales"),
        (lambda d: d["agents"][0].update(profile_id="gold"), "agents[0].profile_id: no profile 'gold'"),
        (lambda d: d["agents"][1].update(count=0), "agents[1].count: a whole number of 1 or more"),
        (lambda d: d["agents"][1].update(shifts=["8-16"]), 'agents[1].shifts.mon: a span is "HH:MM-HH:MM"'),
        (lambda d: d["agents"][1].update(per_hour=[1, 2]), "agents[1]: give shifts or per_hour, not both"),
        (lambda d: d["agents"][1].update(id="ada", count=1), "agents: two agents have the same id"),
        (lambda d: d["profiles"][0].update(capacity=0), "profiles[0]: capacity and weights must be positive"),
        (lambda d: d.update(behaviour={"decline_rate": 0.7, "miss_rate": 0.5}), "behaviour: decline_rate + miss_rate"),
    ],
)
def test_a_bad_desk_is_refused_naming_the_field(change: Any, expected: str) -> None:
    raw = json.loads(json.dumps(DESK))
    change(raw)
    with pytest.raises(DeskError) as caught:
        desk_of(raw)
    assert expected in str(caught.value), str(caught.value)


# -- shifts -----------------------------------------------------------------------------------------------------
def test_shifts_follow_the_local_clock_run_past_midnight_and_merge_when_they_meet() -> None:
    window = Window(MONDAY, 48, drain_s=0)
    night = parse_shifts(["22:00-06:00"], "UTC", "s").spans(window)
    assert [((a - MONDAY) / 3600, (b - MONDAY) / 3600) for a, b in night] == [(0, 6), (22, 30), (46, 48)]
    paris = parse_shifts({"mon": ["08:00-12:00", "12:00-17:00"]}, "Europe/Paris", "s").spans(window)
    assert [((a - MONDAY) / 3600, (b - MONDAY) / 3600) for a, b in paris] == [(7, 16)], "09:00-17:00 in winter"


def test_a_head_count_per_hour_gives_each_agent_the_hours_it_is_needed() -> None:
    window = Window(MONDAY, 4, drain_s=0)
    counts = [2, 1, 0, 2]
    assert [((a - MONDAY) / 3600, (b - MONDAY) / 3600) for a, b in per_hour_spans(counts, 0, window)] == [
        (0, 2),
        (3, 4),
    ]
    assert [((a - MONDAY) / 3600, (b - MONDAY) / 3600) for a, b in per_hour_spans(counts, 1, window)] == [
        (0, 1),
        (3, 4),
    ]


# -- synthetic traffic and durations ---------------------------------------------------------------------------------
def test_synthetic_traffic_arrives_at_the_rate_of_each_hour() -> None:
    streams = [{"channel": "chat", "tier": "gold", "per_hour": [3600, 0], "handle": 60, "patience": {"mean_s": 30}}]
    workload = traffic_of({"start": "2026-01-05T00:00:00Z", "hours": 4, "streams": streams}, seed=3)
    hours = [workload.window.hour_of(a.at) for a in workload.arrivals]
    assert hours.count(1) == hours.count(3) == 0, "the per-hour list repeats"
    assert 2 * 3600 - 4 * 85 < len(hours) < 2 * 3600 + 4 * 85, "Poisson: within 4 standard deviations"
    assert [a.at for a in workload.arrivals] == sorted(a.at for a in workload.arrivals)
    assert all(a.attrs == {"tier": "gold"} and a.patience_s is not None for a in workload.arrivals)
    again = traffic_of({"start": "2026-01-05T00:00:00Z", "hours": 4, "streams": streams}, seed=3)
    assert again.arrivals == workload.arrivals, "the same seed, the same customers"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"streams": []}, "streams: a non-empty list"),
        ({"streams": [{"channel": "chat", "handle": 60}]}, "streams[0]: give either per_hour"),
        ({"streams": [{"channel": "chat", "rate_per_hour": -1, "handle": 60}]}, "streams[0]: arrivals per hour"),
        ({"streams": [{"channel": "chat", "rate_per_hour": 1}]}, "streams[0].handle: required"),
        ({"streams": [{"channel": "chat", "rate_per_hour": 1, "handle": {"distribution": "gamma", "mean_s": 1}}]},
         "streams[0].handle.distribution: one of exponential, lognormal, fixed"),
        ({"hours": 0, "streams": [{"channel": "chat", "rate_per_hour": 1, "handle": 1}]}, "hours: a whole number"),
        ({"start": "monday", "streams": [{"channel": "chat", "rate_per_hour": 1, "handle": 1}]}, "start: not an ISO"),
    ],
)  # fmt: skip
def test_bad_traffic_is_refused_naming_the_field(raw: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError) as caught:
        traffic_of(raw)
    assert expected in str(caught.value), str(caught.value)


def test_a_lognormal_has_the_mean_and_spread_it_was_given() -> None:
    rnd = random.Random(1)
    draws = [
        distribution({"distribution": "lognormal", "mean_s": 300, "sd_s": 200}, "h").draw(rnd) for _ in range(40_000)
    ]
    assert statistics.fmean(draws) == pytest.approx(300, rel=0.02)
    assert statistics.stdev(draws) == pytest.approx(200, rel=0.06)
    with pytest.raises(ValueError, match=r"h.sd_s: a lognormal needs a positive standard deviation"):
        distribution({"distribution": "lognormal", "mean_s": 300}, "h")
