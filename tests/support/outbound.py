"""Outbound messages (a reply on its way to a connector) as the tests write them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.events import Channel
from shared.outbound import OutboundMessage, Recipient


def outbound_message(
    channel: Channel,
    to: Recipient,
    text: str,
    *,
    created_at: datetime,
    id: str = "m-1",
    tenant: str = "acme",
    conversation_id: str = "c-1",
    **extra: Any,
) -> OutboundMessage:
    """A reply of tenant ``acme`` in conversation ``c-1`` unless told otherwise; ``extra``: its other fields."""
    return OutboundMessage(
        id=id,
        tenant=tenant,
        conversation_id=conversation_id,
        channel=channel,
        to=to,
        text=text,
        created_at=created_at,
        **extra,
    )
