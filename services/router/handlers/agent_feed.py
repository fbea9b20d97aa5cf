"""Agent feed events: what consoles, routing.assignments consumers and webhooks see of routing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from services.router.handlers.ports.records import NewMessage
from shared import feed_events
from shared.bus import Outgoing
from shared.feed_events import AgentFeedEvent
from shared.ids import new_id

SUPERVISORS = "supervisors"  # the desk-wide feed: /v1/supervisors/feed


def agent_feed_event(tenant_id: str, row: dict[str, Any]) -> AgentFeedEvent:
    """A stored ``agent_events`` row (with its ``seq``) as the typed event (``shared/feed_events.py``): the
    envelope, and the row's data as the fields of its type. ``InvalidEvent`` if it does not fit the schema."""
    return feed_events.validate(
        {
            "type": row["type"],
            "seq": row["seq"],
            "id": row["id"],
            "tenant": tenant_id,
            "agent_id": row["agent_id"],
            "conversation_id": row["conversation_id"],
            "at": row["at"],
            **row["data"],
        }
    )


def feed_event(tenant_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """An agent feed event's JSON object, as consoles, routing.assignments consumers and webhooks see it."""
    return feed_events.as_object(agent_feed_event(tenant_id, row))


def feed_record(topic: str, tenant_id: str, row: dict[str, Any]) -> Outgoing:
    """Keyed by agent: one agent's events stay in order on one partition."""
    return Outgoing(topic, feed_events.encode(agent_feed_event(tenant_id, row)), key=row["agent_id"].encode())


def new_agent_event(
    tenant_id: str, agent_id: str, event_type: str, conversation_id: str | None, now: datetime, **data: Any
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "tenant_id": tenant_id,
        "agent_id": agent_id,
        "type": event_type,
        "conversation_id": conversation_id,
        "data": orjson.loads(orjson.dumps(data)),  # JSON-safe (datetimes as ISO 8601)
        "at": now,
    }


def message_fields(m: NewMessage) -> dict[str, Any]:
    """The agent feed's ``message`` event (shared/feed_events.py ``Message``) for a message just stored."""
    return {
        "message_id": m.id,
        "channel": m.channel,
        "direction": m.direction,
        "text": m.text,
        "subject": m.subject,
        "event_id": m.event_id,
        "received_at": m.received_at,
    }
