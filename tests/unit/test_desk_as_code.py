"""Desk as code, the pure part: a desk file → the desired desk (the REST API's rules), and desired vs stored →
the plan (create / update field old → new / unchanged) with the values the handlers get."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.desk_as_code.desk_file import DeskFileError, read_desk
from services.desk_as_code.plan import (
    UNSET,
    CurrentDesk,
    FieldChange,
    Ids,
    agent_write,
    current_desk,
    plan,
    queue_write,
    render,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "docs/examples/desk.yaml"

DESK = """
tenant: acme
profiles:
  - {name: Standard, capacity: 3}
queues:
  - name: Messaging
    channels: [chat, sms]
    routing: {offer_timeout_s: 60, overflow_after_s: 300, overflow_to: General}
  - name: Email
    channels: [email]
  - name: General
    is_default: true
agents:
  - {name: Ada, queues: [Messaging, General], profile: Standard, skills: {billing: 3}}
  - {name: Alan, queues: [Email], languages: [en]}
"""


def stored(text: str) -> CurrentDesk:
    """The desk ``text`` declares as the store would hold it once applied: ids for names."""
    desk = read_desk(text)
    queue_ids = {name: f"q-{name}" for name in desk.queues}
    ids = Ids({n: f"p-{n}" for n in desk.profiles}, queue_ids, {n: f"a-{n}" for n in desk.agents})
    creates = plan(desk, CurrentDesk(), "acme").changes
    profiles = [{"id": f"p-{c.name}", "name": c.name, "config": c.values} for c in creates if c.kind == "profile"]
    queues = [{"id": queue_ids[c.name], **queue_write(c, ids)[0]} for c in creates if c.kind == "queue"]
    agents = [{"id": f"a-{c.name}", **agent_write(c, ids)} for c in creates if c.kind == "agent"]
    return current_desk(profiles, queues, agents)


def problems(text: str, current: CurrentDesk | None = None) -> list[tuple[str, str]]:
    with pytest.raises(DeskFileError) as raised:
        plan(read_desk(text), current or CurrentDesk(), "acme")
    return raised.value.problems


def test_the_example_desk_file_reads_as_the_api_would_store_it() -> None:
    desk = read_desk(EXAMPLE.read_text())
    assert desk.tenant == "acme"
    assert list(desk.queues) == ["Messaging", "Email", "General"]
    messaging = desk.queues["Messaging"]
    assert messaging["routing"]["overflow_to"] == "General"  # a name, resolved when applied
    assert messaging["routing"]["strategy"] == "least_loaded"  # the API's default, filled in
    assert messaging["routing"]["hours"]["holidays"] == ["2026-12-25"]
    ada = desk.agents["Ada Lovelace"]
    assert ada["queues"] == ["Messaging", "Email", "General"] and ada["profile"] == "Standard"
    assert "presence" not in ada and "name" not in ada


def test_every_problem_in_a_file_is_named_by_its_place() -> None:
    text = """
queues:
  - {name: Chat, channels: [chat, pigeon]}
  - {name: Slow, routing: {offer_timeout_s: -1}}
  - {name: Chat}
agents:
  - {name: Ada, presence: online}
  - {name: Bob, capacity: {default: -2}}
colour: blue
"""
    with pytest.raises(DeskFileError) as raised:
        read_desk(text)
    where = [w for w, _ in raised.value.problems]
    assert where == [
        "colour",
        "queues['Chat'].channels.1",
        "queues['Slow'].routing.offer_timeout_s",
        "queues['Chat']",
        "agents['Ada'].presence",
        "agents['Bob'].capacity.default",
    ]
    assert "greater than 0" in str(raised.value) and "named twice" in str(raised.value)


def test_a_routing_the_router_could_not_use_is_refused_as_the_api_refuses_it() -> None:
    text = "queues:\n  - {name: Q, routing: {steps: [{after_s: 30}]}}\n"
    with pytest.raises(DeskFileError, match=r"queues\['Q'\]\.routing: invalid routing configuration"):
        read_desk(text)


@pytest.mark.parametrize(
    "text",
    ["queues: [", "- a list", "queues: {name: Q}", "queues:\n  - {channels: [chat]}"],
    ids=["not YAML", "not a mapping", "a section not a list", "an entry without a name"],
)
def test_a_file_of_the_wrong_shape_is_refused(text: str) -> None:
    with pytest.raises(DeskFileError):
        read_desk(text)


def test_two_default_queues_are_refused() -> None:
    with pytest.raises(DeskFileError, match="one default queue at most"):
        read_desk("queues:\n  - {name: A, is_default: true}\n  - {name: B, is_default: true}\n")


def test_on_an_empty_desk_everything_is_created_in_order_profiles_queues_agents() -> None:
    todo = plan(read_desk(DESK), CurrentDesk(), "acme")
    assert [(c.action, c.kind, c.name) for c in todo.changes] == [
        ("create", "profile", "Standard"),
        ("create", "queue", "Messaging"),
        ("create", "queue", "Email"),
        ("create", "queue", "General"),
        ("create", "agent", "Ada"),
        ("create", "agent", "Alan"),
    ]


def test_the_same_file_against_the_desk_it_made_changes_nothing() -> None:
    todo = plan(read_desk(DESK), stored(DESK), "acme")
    assert {c.action for c in todo.changes} == {"unchanged"} and todo.writes == []
    assert render(todo, dry_run=False).endswith("tenant acme: no change (6 unchanged)")


def test_a_changed_field_is_the_only_update_with_its_old_and_new_value() -> None:
    changed = DESK.replace("offer_timeout_s: 60", "offer_timeout_s: 30")
    todo = plan(read_desk(changed), stored(DESK), "acme")
    [update] = todo.writes
    assert (update.kind, update.name, update.id) == ("queue", "Messaging", "q-Messaging")
    assert update.fields == (FieldChange("routing.offer_timeout_s", 60.0, 30.0),)
    values, complete = queue_write(update, Ids.of(stored(DESK)))
    assert complete and list(values) == ["routing"]
    assert values["routing"]["offer_timeout_s"] == 30.0 and values["routing"]["overflow_to"] == "q-General"


def test_every_kind_of_change_is_seen() -> None:
    changed = (
        DESK.replace("capacity: 3}", "capacity: 4}")
        .replace("channels: [email]", "channels: [email, sms]")
        .replace("skills: {billing: 3}", "skills: {billing: 4, refunds: 1}")
        .replace("languages: [en]", "languages: [en, fr]")
    )
    fields = {(c.kind, c.name): c.fields for c in plan(read_desk(changed), stored(DESK), "acme").writes}
    assert fields == {
        ("profile", "Standard"): (FieldChange("capacity", 3.0, 4.0),),
        ("queue", "Email"): (FieldChange("channels", ["email"], ["email", "sms"]),),
        ("agent", "Ada"): (FieldChange("skills.billing", 3, 4), FieldChange("skills.refunds", UNSET, 1)),
        ("agent", "Alan"): (FieldChange("languages", ["en"], ["en", "fr"]),),
    }


def test_a_field_taken_out_of_the_file_is_cleared() -> None:
    todo = plan(read_desk(DESK.replace(", profile: Standard", "")), stored(DESK), "acme")
    [update] = todo.writes
    assert update.fields == (FieldChange("profile", "Standard", UNSET),)
    assert agent_write(update, Ids.of(stored(DESK))) == {"profile_id": None}
    assert 'profile: "Standard" → (unset)' in render(todo, dry_run=True)


def test_a_stored_routing_in_its_short_form_equals_the_file_that_spells_it() -> None:
    rows = [{"id": "q1", "name": "Q", "channels": ["chat"], "is_default": False, "routing": {"offer_timeout_s": 60}}]
    todo = plan(
        read_desk("queues:\n  - {name: Q, channels: [chat], routing: {offer_timeout_s: 60}}"),
        current_desk([], rows, []),
        "t",
    )
    assert [c.action for c in todo.changes] == ["unchanged"]


def test_what_the_file_does_not_name_is_left_alone_but_a_new_default_takes_the_flag() -> None:
    rows = [
        {"id": "q1", "name": "Old default", "channels": [], "is_default": True, "routing": {}},
        {"id": "q2", "name": "Elsewhere", "channels": ["sms"], "is_default": False, "routing": {}},
    ]
    agents = [{"id": "a1", "name": "Zed", "queue_ids": ["q2"], "capacity": {"default": 3}}]
    todo = plan(read_desk("queues:\n  - {name: New, is_default: true}\n"), current_desk([], rows, agents), "t")
    assert [(c.action, c.name, c.implied) for c in todo.changes] == [
        ("create", "New", False),
        ("update", "Old default", True),
    ]
    assert [c.name for c in todo.writes] == ["New"]  # the handler takes the flag off the old one itself
    assert todo.left_alone == (("queue", "Elsewhere"), ("agent", "Zed"))


def test_names_neither_in_the_file_nor_on_the_desk_are_refused() -> None:
    text = """
queues:
  - {name: Q, routing: {overflow_after_s: 60, overflow_to: Nowhere, steps: [{after_s: 0, agents: [Nobody]}]}}
agents:
  - {name: Ada, queues: [Q, Missing], profile: Ghost}
"""
    assert problems(text) == [
        ("agents['Ada'].queues", "no queue 'Missing' in the file or on the desk"),
        ("agents['Ada'].profile", "no profile 'Ghost' in the file or on the desk"),
        ("queues['Q'].routing", "no queue 'Nowhere' in the file or on the desk"),
        ("queues['Q'].routing.steps", "no agent 'Nobody' in the file or on the desk"),
    ]


def test_an_agent_name_the_desk_has_twice_is_refused() -> None:
    twins: list[dict[str, Any]] = [
        {"id": f"a{i}", "name": "Sam", "queue_ids": [], "capacity": {"default": 3}} for i in (1, 2)
    ]
    [(where, why)] = problems("agents:\n  - {name: Sam}\n", current_desk([], [], twins))
    assert where == "agents['Sam']" and "2 agents named 'Sam' (a1, a2)" in why


def test_a_queue_naming_one_created_after_it_is_written_without_it_then_completed() -> None:
    desk = read_desk(DESK)
    [messaging] = [c for c in plan(desk, CurrentDesk(), "acme").changes if c.name == "Messaging"]
    first, complete = queue_write(messaging, Ids())
    assert not complete and "overflow_to" not in first["routing"] and "overflow_after_s" not in first["routing"]
    later, complete = queue_write(messaging, Ids(queues={"General": "q9"}))
    assert complete and later["routing"]["overflow_to"] == "q9" and later["routing"]["overflow_after_s"] == 300.0


def test_a_new_agent_starts_offline_with_ids_for_its_queues_and_profile() -> None:
    [ada] = [c for c in plan(read_desk(DESK), CurrentDesk(), "acme").changes if c.name == "Ada"]
    ids = Ids({"Standard": "p1"}, {"Messaging": "q1", "General": "q3"})
    values = agent_write(ada, ids)
    assert values["presence"] == "offline" and values["queue_ids"] == ["q1", "q3"] and values["profile_id"] == "p1"
    assert "voice_endpoint" not in values


def test_a_dry_run_shows_each_change_and_says_nothing_was_written() -> None:
    changed = DESK.replace("channels: [email]", "channels: [email]\n    routing: {offer_timeout_s: 30}")
    text = render(plan(read_desk(changed), stored(DESK), "acme"), dry_run=True)
    assert "update     queue 'Email'\n             routing.offer_timeout_s: (unset) → 30.0" in text
    assert "unchanged  agent 'Ada'" in text
    assert text.splitlines()[-1] == "tenant acme: 0 to create, 1 to update, 5 unchanged (dry run: nothing written)"
