"""Which feed records a router instance decodes for its live consoles: those keyed by an agent with a console
connected here (or without a key), for as long as one is."""

from __future__ import annotations

from services.router.adapters.feeds import FeedHub
from services.router.handlers.agent_feed import agent_feed_event
from shared.feed_events import decode, encode


def test_records_of_agents_without_a_console_here_are_not_wanted() -> None:
    hub = FeedHub()
    assert not hub.watches(b"agent-1")
    assert hub.watches(None)  # no key: decoded, publish finds its agent if any
    with hub.subscribe("t1", "agent-1"):
        assert hub.watches(b"agent-1")
        assert not hub.watches(b"agent-2")
        assert not hub.watches(b"agent-")
    assert not hub.watches(b"agent-1")


def test_an_agent_stays_watched_while_any_of_its_consoles_is_open() -> None:
    hub = FeedHub()
    with hub.subscribe("t1", "agent-1"):
        with hub.subscribe("t1", "agent-1"):
            pass
        assert hub.watches(b"agent-1")  # the first console is still open
        with hub.subscribe("t2", "agent-1"):  # the same id in another tenant
            pass
        assert hub.watches(b"agent-1")
    assert not hub.watches(b"agent-1")
    assert hub.subscribers() == 0


def test_a_watched_agents_event_reaches_its_console_and_only_its_tenants() -> None:
    hub = FeedHub()
    raw: dict[str, object] = {
        "id": "e1",
        "tenant_id": "t1",
        "agent_id": "agent-1",
        "type": "message",
        "conversation_id": "c1",
        "at": "2026-12-02T10:00:00+00:00",
        "data": {},
        "seq": 7,
    }
    with hub.subscribe("t1", "agent-1") as mine, hub.subscribe("t2", "agent-1") as other:
        hub.publish(decode(encode(agent_feed_event("t1", raw))))
        assert mine.qsize() == 1 and other.qsize() == 0
        assert mine.get_nowait()["conversation_id"] == "c1"
