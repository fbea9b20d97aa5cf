"""The in-app delivery contract (docs/in-app.md) as the connector's pure parts make it: the body an app backend
receives, and how its answer becomes a delivery status."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from services.connectors.channels.in_app import delivered, payload
from services.connectors.runtime import Delivered
from shared.events import Channel, IdentityKind
from shared.outbound import DeliveryState, OutboundMessage, Recipient, SurveyCard
from tests.support.outbound import outbound_message

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def message(**extra: object) -> OutboundMessage:
    return outbound_message(
        Channel.IN_APP,
        Recipient(kind=IdentityKind.APP_USER, value="u-42"),
        "Fixed in 2.1",
        created_at=AT,
        id="m-1",
        tenant="acme",
        conversation_id="c-1",
        thread_ref="not for the app",
        **extra,
    )


def test_the_body_carries_the_reply_for_the_apps_user_and_nothing_internal() -> None:
    assert orjson.loads(payload(message())) == {
        "type": "switchboard.message.outbound",
        "schema_version": 1,
        "message_id": "m-1",
        "tenant": "acme",
        "conversation_id": "c-1",
        "customer": {"external_id": "u-42"},
        "text": "Fixed in 2.1",
        "created_at": "2026-03-01T09:30:00+00:00",
    }


def test_a_survey_travels_as_a_card_the_app_may_render() -> None:
    card = SurveyCard(token="t" * 32, kind="nps", question="Recommend us?", min=0, max=10)
    body = orjson.loads(payload(message(survey=card)))
    assert body["survey"] == {"token": "t" * 32, "kind": "nps", "question": "Recommend us?", "min": 0, "max": 10}


def test_the_backends_answer_is_sent_unless_it_says_delivered() -> None:
    json = "application/json"
    assert delivered(json, b'{"status": "delivered", "id": "app-7"}') == Delivered("app-7", DeliveryState.DELIVERED)
    assert delivered(json, b'{"status": "queued", "id": 7}') == Delivered("7", DeliveryState.SENT)
    assert delivered("text/plain", b"OK") == Delivered(None, DeliveryState.SENT)
    assert delivered(json, b"") == Delivered(None, DeliveryState.SENT)
    assert delivered(json, b"[1, 2]") == Delivered(None, DeliveryState.SENT)
    assert delivered(json, b'{"id": "' + b"x" * 600 + b'"}').provider_message_id == "x" * 512
