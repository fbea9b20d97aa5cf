"""Routing commands on the wire: golden samples both ways, every kind typed, bad records refused with a reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.events import UnsupportedSchemaVersion
from shared.routing_commands import (
    Accept,
    Command,
    Escalate,
    InvalidCommandRecord,
    Resolve,
    SetPresence,
    Tick,
    Transfer,
)

GOLDEN = sorted((Path(__file__).parent / "golden" / "commands").glob("*.json"))
EXPECTED_TYPES = {
    "accept": Accept,
    "set_presence": SetPresence,
    "set_presence_reason": SetPresence,
    "transfer": Transfer,
    "resolve": Resolve,
    "escalate": Escalate,
    "tick": Tick,
}


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_sample_decodes_to_its_type_and_reencodes_to_the_same_json(path: Path) -> None:
    raw = path.read_bytes()
    command = Command.decode(raw)
    assert type(command.body) is EXPECTED_TYPES[path.stem]
    assert orjson.loads(command.encode()) == orjson.loads(raw)
    assert Command.decode(command.encode()) == command


def test_a_record_written_before_schema_version_existed_is_read_as_version_1() -> None:
    old = b'{"id": "x-1", "tenant": "acme", "kind": "tick", "args": {}}'
    assert Command.decode(old) == Command("x-1", "acme", Tick())


def test_an_idempotency_key_names_one_command_per_tenant() -> None:
    body = Accept(agent_id="a", conversation_id="c")
    assert Command.of("acme", body, "key-1").id == Command.of("acme", body, "key-1").id
    assert Command.of("acme", body, "key-1").id != Command.of("other", body, "key-1").id
    assert Command.of("acme", body).id != Command.of("acme", body).id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"id": "", "tenant": "t", "kind": "tick"}', "non-empty"),
        (b'{"id": "x", "tenant": "t", "kind": "reboot"}', "unknown kind 'reboot'"),
        (b'{"id": "x", "tenant": "t", "kind": "accept", "args": {"agent_id": "a"}}', "conversation_id"),
        (
            b'{"id": "x", "tenant": "t", "kind": "set_presence", "args": {"agent_id": "a", "presence": "busy"}}',
            "presence",
        ),
        (b'{"id": "x", "tenant": "t", "kind": "transfer", "args": {"conversation_id": "c"}}', "exactly one"),
        (b'{"id": "x", "tenant": "t", "kind": "tick", "args": {"extra": 1}}', "extra"),
        (b'{"id": "x", "tenant": "t", "kind": "escalate", "args": {"escalations": []}}', "escalations"),
    ],
)
def test_a_record_that_makes_no_command_is_refused_with_why(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidCommandRecord, match=reason):
        Command.decode(raw)


def test_an_unknown_schema_version_is_refused_explicitly() -> None:
    with pytest.raises(UnsupportedSchemaVersion):
        Command.decode(b'{"schema_version": 2, "id": "x", "tenant": "t", "kind": "tick", "args": {}}')


def test_every_kind_has_a_golden_sample_and_a_handler() -> None:
    from services.router.handlers.agent_commands import HANDLERS

    kinds = {p.stem for p in GOLDEN}
    assert {"accept", "set_presence", "transfer", "resolve", "escalate", "tick"} <= kinds
    assert {t.__name__ for t in HANDLERS} == {
        "SetPresence",
        "Accept",
        "Decline",
        "Claim",
        "Transfer",
        "Resolve",
        "Tick",
        "Escalate",
    }
