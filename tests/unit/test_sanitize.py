"""Every event a connector or the API produces, and every event the router decodes, can be stored by both
stores: no NUL character anywhere, timestamps inside the plausible window, and what changed recorded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.events import (
    Call,
    CallStatus,
    Channel,
    Content,
    ConversationEvent,
    IdentityKind,
    InvalidEvent,
    Sender,
    decode_event,
    encode_event,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def event(text: str = "hello", **changes: object) -> ConversationEvent:
    base: dict[str, object] = dict(
        id="e-1",
        source="tests",
        time=NOW,
        tenant="acme",
        channel=Channel.IN_APP,
        sender=Sender(kind=IdentityKind.APP_USER, value="u-1"),
        content=Content(text=text),
        received_at=NOW,
    )
    base.update(changes)
    return ConversationEvent.model_validate(base)


def raw(**fields: object) -> bytes:
    data = orjson.loads(encode_event(event()))
    data.update(fields)
    return orjson.dumps(data)


def no_nul_anywhere(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all(no_nul_anywhere(k) and no_nul_anywhere(v) for k, v in value.items())
    if isinstance(value, list):
        return all(no_nul_anywhere(v) for v in value)
    return True


def test_a_clean_event_is_unchanged_and_carries_no_sanitized_record() -> None:
    e = event()
    assert encode_event(e) == e.model_dump_json(exclude_none=True).encode()
    assert decode_event(encode_event(e)) == e


def test_nul_is_removed_from_every_string_and_key_and_each_place_recorded() -> None:
    e = event(
        "a\x00b",
        sender=Sender(
            kind=IdentityKind.APP_USER,
            value="u\x00-1",
            display_name="Sa\x00m",
            attributes={"pl\x00an": "go\x00ld", "ok": "fine"},
        ),
        content=Content(text="a\x00b", subject="Re\x00: hi"),
    )
    decoded = decode_event(encode_event(e))
    assert decoded.content.text == "ab"
    assert decoded.content.subject == "Re: hi"
    assert decoded.sender.value == "u-1"
    assert decoded.sender.display_name == "Sam"
    assert decoded.sender.attributes == {"plan": "gold", "ok": "fine"}
    assert decoded.sanitized is not None
    assert set(decoded.sanitized.cleaned) == {
        "content.text",
        "content.subject",
        "sender.value",
        "sender.display_name",
        "sender.attributes.plan",
    }
    assert decoded.sanitized.replaced == {}


def test_the_router_cleans_events_an_older_connector_produced_uncleaned() -> None:
    data = orjson.loads(encode_event(event()))
    data["content"]["text"] = "x\x00y"
    decoded = decode_event(orjson.dumps(data))
    assert decoded.content.text == "xy"
    assert decoded.sanitized is not None and decoded.sanitized.cleaned == ["content.text"]


@pytest.mark.parametrize(
    "sent_at",
    [
        "0001-01-01T00:00:00+14:00",  # year 1 with a positive offset: no UTC instant exists
        "9999-12-31T23:59:59-14:00",  # year 9999 with a negative one: past year 9999 in UTC
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        (NOW + timedelta(days=1, seconds=1)).isoformat(),
    ],
)
def test_an_implausible_sent_at_is_replaced_by_received_at_and_kept(sent_at: str) -> None:
    decoded = decode_event(raw(sent_at=sent_at))
    assert decoded.sent_at == NOW
    assert decoded.sanitized is not None and decoded.sanitized.replaced == {"sent_at": sent_at}


@pytest.mark.parametrize(
    "sent_at", ["2000-01-01T00:00:00Z", (NOW - timedelta(days=3)).isoformat(), (NOW + timedelta(hours=23)).isoformat()]
)
def test_a_plausible_sent_at_is_kept(sent_at: str) -> None:
    decoded = decode_event(raw(sent_at=sent_at))
    assert decoded.sent_at == datetime.fromisoformat(sent_at.replace("Z", "+00:00"))
    assert decoded.sanitized is None


def test_a_time_without_offset_is_read_as_utc() -> None:
    decoded = decode_event(raw(sent_at="2026-11-30T10:00:00", received_at="2026-11-30T12:00:00"))
    assert decoded.sent_at == datetime(2026, 11, 30, 10, tzinfo=UTC)
    assert decoded.received_at == NOW


@pytest.mark.parametrize("field", ["received_at", "time"])
def test_a_connector_clock_outside_utc_is_refused(field: str) -> None:
    with pytest.raises(InvalidEvent, match=field):
        decode_event(raw(**{field: "9999-12-31T23:00:00-05:00"}))


def test_a_callback_window_outside_the_plausible_range_is_dropped_and_kept() -> None:
    e = event(
        channel=Channel.VOICE,
        call=Call(status=CallStatus.CALLBACK_REQUESTED, window_start=datetime(1, 1, 1, tzinfo=UTC), window_end=NOW),
    )
    decoded = decode_event(encode_event(e))
    assert decoded.call is not None and decoded.call.window_start is None and decoded.call.window_end == NOW
    assert decoded.sanitized is not None and list(decoded.sanitized.replaced) == ["call.window_start"]


@given(
    text=st.text(max_size=200),
    name=st.text(max_size=50),
    value=st.text(min_size=1, max_size=50).filter(lambda v: v.replace("\x00", "") != ""),
    attrs=st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=5),
)
def test_whatever_text_goes_in_what_comes_out_holds_no_nul(text: str, name: str, value: str, attrs: dict) -> None:  # type: ignore[type-arg]
    try:
        e = event(text, sender=Sender(kind=IdentityKind.APP_USER, value=value, display_name=name, attributes=attrs))
    except ValueError:
        return  # lone surrogates: refused by the schema at the edge already
    decoded = decode_event(encode_event(e))
    assert no_nul_anywhere(decoded.model_dump())
    assert decoded.content.text == text.replace("\x00", "")
    assert (decoded.sanitized is not None) == any("\x00" in s for s in (text, name, value, *attrs, *attrs.values()))
