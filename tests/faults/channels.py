"""The channels of the fault traffic, provider by provider: how each provider signs the webhooks it sends (the
signatures are computed here, with the providers' own rules and Twilio's own library, never the connectors'
code), the settings its connector runs with, and which channels each connector serves.

Message ``i`` goes in by ``CHANNELS[i % 6]``: a third by the REST API (stored as ``in_app``), a sixth each as
Telegram, WhatsApp, Messenger and SMS webhooks."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from twilio.request_validator import RequestValidator

TELEGRAM_SECRET = "tg-fault-secret"
TELEGRAM_BOT = "123456:FAULTS"
META_APP_SECRET = "meta-fault-app-secret"
WHATSAPP_PHONE_NUMBER_ID = "FAULTS_PHONE_ID"
MESSENGER_PAGE_ID = "FAULTS_PAGE"
TWILIO_AUTH_TOKEN = "twilio-fault-auth-token"
TWILIO_ACCOUNT = "AC" + "f" * 32
TWILIO_NUMBER = "+15550001111"
TWILIO_PUBLIC_BASE = "https://hooks.faults.example"  # the URL Twilio signs; a proxy would forward it to us

# The channel of message i is CHANNELS[i % len(CHANNELS)], as the router stores it (the REST API's is in_app).
CHANNELS = ("in_app", "telegram", "whatsapp", "in_app", "messenger", "sms")
# `switchboard connector <name>`: the channels it takes webhooks for and delivers replies to (its outbound
# consumers, services/connectors/channels/). Every webhook channel of CHANNELS is one of them.
CONNECTORS = {"telegram": ("telegram",), "meta": ("messenger", "instagram", "whatsapp"), "twilio": ("sms",)}
REPLY_CHANNELS = ("telegram", "whatsapp", "messenger", "sms")  # the desk replies on these: a connector delivers
WEBHOOK_PATHS = {"telegram": "/webhooks/telegram", "meta": "/webhooks/meta", "twilio": "/webhooks/twilio/sms"}


def connector_of(channel: str) -> str:
    return next(name for name, served in CONNECTORS.items() if channel in served)


def connector_settings(name: str, provider_base: str) -> dict[str, str]:
    """The provider settings of connector ``name``: the secret its webhooks are verified with, and where and
    with what it delivers replies (``provider_base``: the fake providers)."""
    return {
        "telegram": {
            "telegram_secret_token": TELEGRAM_SECRET,
            "telegram_bot_token": TELEGRAM_BOT,
            "telegram_api_base_url": provider_base,
        },
        "meta": {
            "meta_app_secret": META_APP_SECRET,
            "meta_graph_base_url": provider_base,
            "meta_page_access_token": "page-faults",
            "whatsapp_access_token": "wa-faults",
            "whatsapp_phone_number_id": WHATSAPP_PHONE_NUMBER_ID,
        },
        "twilio": {
            "twilio_auth_token": TWILIO_AUTH_TOKEN,
            "twilio_account_sid": TWILIO_ACCOUNT,
            "twilio_from_number": TWILIO_NUMBER,
            "twilio_api_base_url": provider_base,
            "public_base_url": TWILIO_PUBLIC_BASE,  # Twilio signs the public URL, not ours behind it
        },
    }[name]


def webhook(channel: str, i: int, customer: int, text: str) -> dict[str, Any]:
    """Message ``i`` of ``customer`` as ``channel``'s provider delivers it: httpx's arguments (body, headers)."""
    if channel == "telegram":
        return telegram_update(i, customer, text)
    if channel == "sms":
        return twilio_sms(i, customer, text)
    return meta_delivery(channel, i, customer, text)


def telegram_update(i: int, customer: int, text: str) -> dict[str, Any]:
    """A Bot API update, with the secret token given to setWebhook (X-Telegram-Bot-Api-Secret-Token)."""
    update = {
        "update_id": 100_000_000 + i,
        "message": {
            "message_id": i,
            "from": {"id": 5_000_000 + customer, "is_bot": False, "first_name": "Fx"},
            "chat": {"id": 5_000_000 + customer, "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }
    return {"json": update, "headers": {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}}


def meta_delivery(channel: str, i: int, customer: int, text: str) -> dict[str, Any]:
    """A WhatsApp Cloud API or Messenger webhook delivery, signed as Meta signs it: X-Hub-Signature-256 is
    ``sha256=`` + the hex HMAC-SHA256 of the raw body with the app secret. The raw bytes are sent as signed."""
    now = time.time()
    payload: dict[str, Any]
    if channel == "whatsapp":
        wa_id = f"4475{customer:08d}"
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": WHATSAPP_PHONE_NUMBER_ID},
            "contacts": [{"profile": {"name": "Fx"}, "wa_id": wa_id}],
            "messages": [
                {
                    "from": wa_id,
                    "id": f"wamid.FX{i:09d}",
                    "timestamp": str(int(now)),
                    "type": "text",
                    "text": {"body": text},
                }
            ],
        }
        payload = {
            "object": "whatsapp_business_account",
            "entry": [{"id": "FAULTS_WABA", "changes": [{"field": "messages", "value": value}]}],
        }
    else:
        event = {
            "sender": {"id": f"PSID{customer:08d}"},
            "recipient": {"id": MESSENGER_PAGE_ID},
            "timestamp": int(now * 1000),
            "message": {"mid": f"m_fx{i:09d}", "text": text},
        }
        payload = {
            "object": "page",
            "entry": [{"id": MESSENGER_PAGE_ID, "time": int(now * 1000), "messaging": [event]}],
        }
    raw = json.dumps(payload).encode()
    signature = hmac.new(META_APP_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"}
    return {"content": raw, "headers": headers}


def twilio_sms(i: int, customer: int, text: str) -> dict[str, Any]:
    """A Twilio incoming-SMS webhook, signed with Twilio's own validator (its library, not ours): base64
    HMAC-SHA1 of the public URL followed by the sorted form parameters, keyed with the auth token."""
    sid = f"SM{i:032d}"
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": TWILIO_ACCOUNT,
        "From": f"+1555{customer:07d}",
        "To": TWILIO_NUMBER,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    url = TWILIO_PUBLIC_BASE + WEBHOOK_PATHS["twilio"]
    signature = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, form)
    return {"data": form, "headers": {"X-Twilio-Signature": signature}}
