"""Outbound messages (a reply on its way to a connector) as the tests write them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import Channel
from shared.outbound import OutboundMessage, Recipient


def outbound_message(
    channel: Channel, to: Recipient, text: str, *, created_at: datetime, **fields: Any
) -> OutboundMessage:
    """A reply of tenant ``acme`` in conversation ``c-1`` unless ``fields`` say otherwise (any of its fields)."""
    defaults = {"id": "m-1", "tenant": "acme", "conversation_id": "c-1"}
    return OutboundMessage(channel=channel, to=to, text=text, created_at=created_at, **(defaults | fields))
