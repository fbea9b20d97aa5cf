"""The conversation event schema: golden samples both ways, strict validation, explicit version refusal."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from shared.events import (
    ConversationEvent,
    InvalidEvent,
    UnsupportedSchemaVersion,
    decode_event,
    encode_event,
    event_id_for,
)

GOLDEN = sorted((Path(__file__).parent / "golden").glob("*.json"))


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_golden_sample_decodes_and_reencodes_to_the_same_json(path: Path) -> None:
    raw = path.read_bytes()
    event = decode_event(raw)
    again = decode_event(encode_event(event))
    assert again == event
    # Same document both ways (up to formatting): nothing dropped, nothing invented.
    assert orjson.loads(encode_event(event)) == _normalized(orjson.loads(raw))


def _normalized(doc: dict[str, object]) -> dict[str, object]:
    return orjson.loads(encode_event(ConversationEvent.model_validate(doc)))


def test_golden_samples_cover_several_channels() -> None:
    channels = {decode_event(p.read_bytes()).channel for p in GOLDEN}
    assert len(channels) >= 3


def _sample() -> dict[str, object]:
    return orjson.loads(GOLDEN[0].read_bytes())


@pytest.mark.parametrize("version", [None, 0, 2, "1", 99])
def test_unknown_schema_version_is_refused_explicitly(version: object) -> None:
    doc = _sample()
    doc["schema_version"] = version
    with pytest.raises(UnsupportedSchemaVersion, match="schema_version"):
        decode_event(orjson.dumps(doc))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.pop("tenant"), "tenant"),
        (lambda d: d.update(channel="pigeon"), "channel"),
        (lambda d: d.update(unexpected=1), "unexpected"),
        (lambda d: d.update(tenant="bad tenant!"), "tenant"),
        (lambda d: d["sender"].update(kind="fax"), "sender.kind"),
    ],
)
def test_invalid_event_is_refused_with_the_field_in_the_reason(mutate: object, reason: str) -> None:
    doc = _sample()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(InvalidEvent) as err:
        decode_event(orjson.dumps(doc))
    assert reason in err.value.reason


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1,2]", b"null", b'"text"'])
def test_non_object_payloads_are_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(raw)


def test_partition_key_is_the_tenant_so_one_router_owns_it() -> None:
    a = decode_event(GOLDEN[0].read_bytes())
    b = a.model_copy(update={"id": "other", "sender": a.sender.model_copy(update={"value": "someone-else"})})
    assert a.partition_key() == b.partition_key() == a.tenant.encode()


def test_idempotency_key_maps_to_a_stable_event_id_per_tenant() -> None:
    assert event_id_for("t1", "k") == event_id_for("t1", "k")
    assert event_id_for("t1", "k") != event_id_for("t2", "k")
