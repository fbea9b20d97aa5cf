"""Normalizing provider payloads shaped as the providers document them."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.connectors.channels import meta, telegram
from shared.events import Channel, ConversationEvent, IdentityKind


def eid(channel: object, provider_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{channel}:{provider_id}"))


def ids_and_texts(events: list[ConversationEvent]) -> list[tuple[str | None, str]]:
    """Each event's provider message id and text, in order."""
    return [(e.channel_message_id, e.content.text) for e in events]


def meta_webhook(object_: str, page_id: str, time: int, *messaging: dict[str, Any]) -> dict[str, Any]:
    """A Messenger Platform webhook body (Messenger and Instagram): one entry with its messaging items."""
    return {"object": object_, "entry": [{"id": page_id, "time": time, "messaging": list(messaging)}]}


def messaging(sender: str, recipient: str, timestamp: int, **event: Any) -> dict[str, Any]:
    """One messaging item: ``event`` is its message, postback, delivery or read."""
    return {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": timestamp, **event}


MESSENGER = meta_webhook(
    "page",
    "PAGE_ID",
    1700000000000,
    messaging("PSID_1", "PAGE_ID", 1700000000000, message={"mid": "m_1", "text": "hello, world!"}),
    messaging(
        "PSID_1",
        "PAGE_ID",
        1700000000100,
        message={"mid": "m_2", "text": "Red", "quick_reply": {"payload": "COLOR_RED"}},
    ),
    messaging(
        "PSID_1",
        "PAGE_ID",
        1700000000200,
        message={
            "mid": "m_3",
            "attachments": [{"type": "image", "payload": {"url": "https://cdn.example/x.jpg"}}],
        },
    ),
    messaging(
        "PSID_1",
        "PAGE_ID",
        1700000000300,
        postback={"mid": "m_4", "title": "Get Started", "payload": "GET_STARTED"},
    ),
    messaging(
        "PAGE_ID",
        "PSID_1",
        1700000000400,
        message={"mid": "m_5", "is_echo": True, "app_id": 1, "text": "our own reply"},
    ),
    messaging("PSID_1", "PAGE_ID", 1700000000500, delivery={"mids": ["m_5"], "watermark": 1700000000400}),
    messaging("PSID_1", "PAGE_ID", 1700000000600, read={"watermark": 1700000000400}),
)

WHATSAPP = {
    "object": "whatsapp_business_account",
    "entry": [
        {
            "id": "WABA_ID",
            "changes": [
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PHONE_NUMBER_ID"},
                        "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "14155550100"}],
                        "messages": [
                            {
                                "from": "14155550100",
                                "id": "wamid.A",
                                "timestamp": "1700000000",
                                "type": "text",
                                "text": {"body": "Hi, any update?"},
                            },
                            {
                                "from": "14155550100",
                                "id": "wamid.B",
                                "timestamp": "1700000001",
                                "type": "image",
                                "image": {
                                    "caption": "the box",
                                    "mime_type": "image/jpeg",
                                    "sha256": "abc",
                                    "id": "MEDIA_ID",
                                },
                            },
                            {
                                "from": "14155550100",
                                "id": "wamid.C",
                                "timestamp": "1700000002",
                                "type": "interactive",
                                "interactive": {
                                    "type": "button_reply",
                                    "button_reply": {"id": "yes", "title": "Yes please"},
                                },
                            },
                        ],
                    },
                },
                {
                    "field": "messages",
                    "value": {
                        "messaging_product": "whatsapp",
                        "metadata": {"phone_number_id": "PHONE_NUMBER_ID"},
                        "statuses": [
                            {
                                "id": "wamid.OUT",
                                "status": "delivered",
                                "timestamp": "1700000003",
                                "recipient_id": "14155550100",
                            }
                        ],
                    },
                },
            ],
        }
    ],
}


def test_messenger_text_quick_reply_media_and_postback_become_events_and_echoes_receipts_do_not() -> None:
    events = meta.normalize(MESSENGER, "demo", eid)
    assert ids_and_texts(events) == [("m_1", "hello, world!"), ("m_2", "Red"), ("m_3", ""), ("m_4", "Get Started")]
    assert all(e.channel is Channel.MESSENGER and e.sender.kind is IdentityKind.MESSENGER_PSID for e in events)
    assert events[0].sender.value == "PSID_1" and events[0].tenant == "demo"
    assert events[2].content.attachments[0].ref == "https://cdn.example/x.jpg"
    assert events[0].id == eid(Channel.MESSENGER, "m_1")


INSTAGRAM = meta_webhook(
    "instagram", "IG", 1, messaging("IGSID", "IG", 1700000000000, message={"mid": "ig_1", "text": "hey"})
)


def test_instagram_uses_its_own_channel_and_identity_kind() -> None:
    payload = INSTAGRAM
    (event,) = meta.normalize(payload, "demo", eid)
    assert event.channel is Channel.INSTAGRAM and event.sender.kind is IdentityKind.INSTAGRAM_ID


def test_whatsapp_messages_become_verified_phone_events_and_statuses_are_ignored() -> None:
    events = meta.normalize(WHATSAPP, "demo", eid)
    assert ids_and_texts(events) == [("wamid.A", "Hi, any update?"), ("wamid.B", "the box"), ("wamid.C", "Yes please")]
    first = events[0]
    assert (first.sender.kind, first.sender.value, first.sender.verified) == (IdentityKind.PHONE, "+14155550100", True)
    assert first.sender.display_name == "Kerry Fisher"
    assert events[1].content.attachments[0].content_type == "image/jpeg"


@pytest.mark.parametrize(
    "payload",
    [
        {"object": "page"},
        {"object": "unknown", "entry": []},
        {"object": "page", "entry": [{"messaging": [{"message": {"text": "no ids"}}]}]},
    ],
)
def test_unreadable_meta_payloads_raise(payload: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises((ValueError, KeyError, TypeError)):
        meta.normalize(payload, "demo", eid)


TG_MESSAGE = {
    "update_id": 10000,
    "message": {
        "message_id": 1365,
        "date": 1700000000,
        "from": {
            "id": 1111111,
            "is_bot": False,
            "first_name": "Test",
            "last_name": "User",
            "username": "tuser",
            "language_code": "en",
        },
        "chat": {"id": 1111111, "type": "private", "first_name": "Test", "username": "tuser"},
        "text": "/start",
    },
}


def test_telegram_message_edit_and_media() -> None:
    event = telegram.normalize(TG_MESSAGE, "demo", eid)
    assert event is not None
    assert (event.sender.kind, event.sender.value, event.content.text) == (
        IdentityKind.TELEGRAM_ID,
        "1111111",
        "/start",
    )
    assert event.thread_ref == "1111111" and event.sender.display_name == "Test User"
    edited = {"update_id": 10001, "edited_message": {**TG_MESSAGE["message"], "text": "fixed", "edit_date": 1700000100}}
    ev2 = telegram.normalize(edited, "demo", eid)
    assert ev2 is not None and ev2.content.text == "(edited) fixed" and ev2.id != event.id
    photo = {
        "update_id": 10002,
        "message": {
            **TG_MESSAGE["message"],
            "message_id": 1366,
            "text": None,
            "caption": "look",
            "photo": [
                {"file_id": "small", "file_unique_id": "s", "file_size": 10, "width": 1, "height": 1},
                {"file_id": "big", "file_unique_id": "b", "file_size": 99, "width": 9, "height": 9},
            ],
        },
    }
    ev3 = telegram.normalize(photo, "demo", eid)
    assert ev3 is not None and ev3.content.text == "look" and ev3.content.attachments[0].ref == "telegram-file:big"


def test_telegram_updates_without_a_customer_message_are_skipped() -> None:
    assert telegram.normalize({"update_id": 1, "callback_query": {}}, "demo", eid) is None
    bot = {"update_id": 2, "message": {**TG_MESSAGE["message"], "from": {"id": 5, "is_bot": True}}}
    assert telegram.normalize(bot, "demo", eid) is None
    with pytest.raises(ValueError):
        telegram.normalize({"message": {}}, "demo", eid)
