"""WhatsApp's customer service window (domain/whatsapp_window.py), the template on the outbound message and the
Cloud API template request the meta connector builds from it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import ValidationError

from services.connectors.channels.meta import template_content
from services.router.domain.errors import InvalidCommand
from services.router.domain.whatsapp_window import Window, WindowClosed, closes_at, opened_at, window
from shared.events import Channel, IdentityKind
from shared.outbound import OutboundMessage, Recipient, WhatsAppTemplate, decode_outbound, encode
from tests.support.outbound import outbound_message

WROTE = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night European clocks go forward: no bearing on UTC


@pytest.mark.parametrize(
    ("later", "is_open"),
    [
        (timedelta(0), True),
        (timedelta(hours=23, minutes=59, seconds=59, microseconds=999_999), True),
        (timedelta(hours=24), False),  # exactly 24 hours: closed
        (timedelta(hours=24, microseconds=1), False),
        (timedelta(hours=25), False),
    ],
)
def test_the_window_is_open_for_24_hours_after_the_customer_wrote(later: timedelta, is_open: bool) -> None:
    assert window(WROTE, WROTE + later) == Window(datetime(2026, 3, 30, 0, 30, tzinfo=UTC), is_open)


def test_the_window_is_the_same_instant_whatever_the_offsets_say() -> None:
    cest = timezone(timedelta(hours=2))
    assert window(WROTE.astimezone(cest), WROTE + timedelta(hours=24)).open is False
    assert window(WROTE, (WROTE + timedelta(hours=23)).astimezone(cest)).open is True


def test_a_connector_clock_ahead_of_the_routers_opens_the_window_when_the_router_stored_the_message() -> None:
    stored = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    ahead = stored + timedelta(minutes=5)
    opened = opened_at(ahead, stored)
    assert opened == stored
    assert window(opened, stored) == Window(datetime(2026, 3, 30, 12, 0, tzinfo=UTC), True)
    assert window(opened, stored + timedelta(hours=24)).open is False  # not 5 minutes more
    behind = stored - timedelta(seconds=3)  # the usual case: the connector received it, then the router stored it
    assert opened_at(behind, stored) == behind
    assert opened_at(behind, None) == behind


def test_no_message_from_the_customer_on_whatsapp_means_no_window() -> None:
    assert window(None, WROTE) == Window(None, False)
    assert opened_at(None, None) is None
    assert closes_at(None) is None
    assert closes_at(WROTE) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)


def test_the_refusal_is_a_409_invalid_command_naming_when_the_window_closed() -> None:
    closed = WindowClosed(window(WROTE, WROTE + timedelta(hours=25)), "reply")
    assert isinstance(closed, InvalidCommand)
    assert str(closed) == (
        "The WhatsApp customer service window closed at 2026-03-30T00:30:00Z, 24 hours after the customer's "
        "last message: WhatsApp delivers no free text now. Send an approved template instead "
        "(template: name, language, parameters)."
    )
    assert closed.timeline_data() == {
        "reason": "whatsapp_window_closed",
        "purpose": "reply",
        "channel": "whatsapp",
        "window_closed_at": "2026-03-30T00:30:00+00:00",
    }
    never = WindowClosed(window(None, WROTE), "survey")
    assert str(never).startswith("The customer has not written on WhatsApp in this conversation")
    assert never.timeline_data()["window_closed_at"] is None


def test_the_cloud_api_template_shape() -> None:
    template = WhatsAppTemplate(name="order_update", language="pt_BR", parameters=["Ana", "R$ 10,00"])
    assert template_content(template) == {
        "type": "template",
        "template": {
            "name": "order_update",
            "language": {"code": "pt_BR"},
            "components": [
                {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "R$ 10,00"}]}
            ],
        },
    }
    assert template_content(WhatsAppTemplate(name="hello_world", language="en")) == {
        "type": "template",
        "template": {"name": "hello_world", "language": {"code": "en"}},
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "Order Update", "language": "en"},
        {"name": "", "language": "en"},
        {"name": "order_update", "language": "english"},
        {"name": "order_update", "language": "en", "parameters": [""]},
        {"name": "order_update", "language": "en", "extra": 1},
    ],
)
def test_a_template_that_whatsapp_could_not_name_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        WhatsAppTemplate.model_validate(bad)


def _message(**extra: object) -> OutboundMessage:
    to = Recipient(kind=IdentityKind.PHONE, value="+14155550100")
    return outbound_message(
        Channel.WHATSAPP, to, "hello", created_at=WROTE, id="m1", tenant="t1", conversation_id="c1", **extra
    )


def test_the_outbound_message_carries_a_template_and_stays_readable_without_one() -> None:
    plain = encode(_message())
    assert b"template" not in plain  # what connectors read today, unchanged
    assert decode_outbound(plain).template is None
    template = WhatsAppTemplate(name="order_update", language="en_US", parameters=["Kerry"])
    raw = encode(_message(template=template))
    assert orjson.loads(raw)["template"] == {"name": "order_update", "language": "en_US", "parameters": ["Kerry"]}
    assert decode_outbound(raw).template == template
