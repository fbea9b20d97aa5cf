"""Connectors end to end: each channel's wire format in, through the router, and the agent's reply back out
on the same channel, checked at a local stand-in of the provider's API."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import orjson
import pytest
from twilio.request_validator import RequestValidator

from services.connectors.replay import ReplayCache
from services.router.adapters.views import queries
from services.router.adapters.views import timeline as timelines
from shared.bus_memory import MemoryBus
from shared.events import Channel
from tests.support.http import http_client
from tests.support.runtime import conversation_of, wait_for
from tests.support.system import SECRETS, System, signed_email_fields, system
from tests.unit.connectors.test_normalize import MESSENGER, TG_MESSAGE, WHATSAPP


@pytest.fixture(params=["embedded", "production"])
async def sys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    async with system(request.param, tmp_path, servers) as s:
        yield s


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[System]:
    async with system("embedded", tmp_path) as s:
        yield s


def meta_headers(body: bytes, secret: str = SECRETS["meta_app_secret"]) -> dict[str, str]:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"}


def twilio_form(sid: str, sender: str = "+14155550100", body: str = "hello by sms") -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": SECRETS["twilio_account_sid"],
        "From": sender,
        "To": "+15550001111",
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }


def events_on_bus(s: System) -> int:
    assert isinstance(s.desk.bus, MemoryBus)
    return len(s.desk.bus.records(s.desk.router.topics.events))


async def reply(s: System, conversation_id: str, text: str, channel: str | None = None) -> dict[str, Any]:
    return await s.desk.router.replies.reply(
        s.tenant, conversation_id, text, Channel(channel) if channel else None, "agent-test"
    )


async def message_status(s: System, conversation_id: str, message_id: str, want: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        async with s.desk.router.repo.reader() as conn:
            conv = await queries.conversation(conn, s.tenant, conversation_id)
        msg = next(m for m in conv["messages"] if m["id"] == message_id)  # type: ignore[index]
        return msg if msg["status"] == want else None

    return await wait_for(check, timeout_s=20)  # type: ignore[no-any-return]


# -- Meta ---------------------------------------------------------------------------------------------------


async def test_meta_handshake_echoes_the_challenge_only_for_our_verify_token(embedded: System) -> None:
    async with http_client(base_url=embedded.base) as http:
        ok = await http.get(
            "/webhooks/meta",
            params={"hub.mode": "subscribe", "hub.verify_token": "meta-verify-token", "hub.challenge": "1158201444"},
        )
        assert (ok.status_code, ok.text) == (200, "1158201444")
        bad = await http.get(
            "/webhooks/meta", params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
        )
        assert bad.status_code == 403 and bad.headers["content-type"] == "application/problem+json"


async def test_signed_meta_payloads_become_conversations_and_replies_go_out_through_the_graph_api(sys: System) -> None:
    async with http_client(base_url=sys.base) as http:
        for payload in (MESSENGER, WHATSAPP):
            body = orjson.dumps(payload)
            r = await http.post("/webhooks/meta", content=body, headers=meta_headers(body))
            assert r.status_code == 200, r.text
    m1 = await wait_for(lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.MESSENGER, "m_1")))
    wa = await wait_for(lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.WHATSAPP, "wamid.C")))
    assert [m["text"] for m in m1["messages"]][:2] == ["hello, world!", "Red"]
    assert [m["text"] for m in wa["messages"] if m["direction"] == "inbound"] == [
        "Hi, any update?",
        "the box",
        "Yes please",
    ]

    sent = await reply(sys, m1["id"], "We are on it")
    await message_status(sys, m1["id"], sent["message_id"], "sent")
    graph = [r for r in sys.fake.requests if r.path == "/v21.0/me/messages"]
    assert graph[-1].headers["authorization"] == "Bearer page-token"
    assert graph[-1].json == {
        "recipient": {"id": "PSID_1"},
        "messaging_type": "RESPONSE",
        "message": {"text": "We are on it"},
    }

    sent = await reply(sys, wa["id"], "Shipped today")
    done = await message_status(sys, wa["id"], sent["message_id"], "sent")
    assert done["channel_message_id"].startswith("wamid.OUT")
    cloud = [r for r in sys.fake.requests if r.path == "/v21.0/PHONE_NUMBER_ID/messages"]
    assert cloud[-1].headers["authorization"] == "Bearer wa-token"
    assert cloud[-1].json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "14155550100",
        "type": "text",
        "text": {"preview_url": False, "body": "Shipped today"},
    }


@pytest.mark.parametrize("tamper", ["missing", "wrong-secret", "tampered-body"])
async def test_meta_rejects_bad_signatures(embedded: System, tamper: str) -> None:
    body = orjson.dumps(MESSENGER)
    headers = meta_headers(body, "wrong" if tamper == "wrong-secret" else SECRETS["meta_app_secret"])
    if tamper == "missing":
        headers.pop("X-Hub-Signature-256")
    sent = body.replace(b"hello", b"HELLO") if tamper == "tampered-body" else body
    async with http_client(base_url=embedded.base) as http:
        r = await http.post("/webhooks/meta", content=sent, headers=headers)
    assert r.status_code == (401 if tamper == "missing" else 403)
    assert events_on_bus(embedded) == 0


async def test_duplicate_deliveries_of_one_provider_message_make_one_event(embedded: System) -> None:
    body = orjson.dumps(MESSENGER)
    async with http_client(base_url=embedded.base) as http:
        for _ in range(3):
            assert (await http.post("/webhooks/meta", content=body, headers=meta_headers(body))).status_code == 200
    assert events_on_bus(embedded) == 4  # four customer messages in the payload, each once
    conv = await wait_for(
        lambda: conversation_of(embedded.desk, embedded.connectors.event_id(Channel.MESSENGER, "m_4"))
    )
    assert len([m for m in conv["messages"] if m["direction"] == "inbound"]) == 4


async def test_a_verified_payload_that_cannot_be_normalized_is_dead_lettered_with_200(embedded: System) -> None:
    body = orjson.dumps({"object": "page", "entry": [{"messaging": [{"message": {"text": "no sender"}}]}]})
    async with http_client(base_url=embedded.base) as http:
        r = await http.post("/webhooks/meta", content=body, headers=meta_headers(body))
    assert r.status_code == 200 and r.json() == {"status": "dead-lettered"}
    assert isinstance(embedded.desk.bus, MemoryBus)
    (dead,) = embedded.desk.bus.records(embedded.desk.router.topics.deadletter)
    assert dead.value == body and b"cannot normalize" in (dead.header("reason") or b"")


# -- Telegram -----------------------------------------------------------------------------------------------


async def test_telegram_update_with_secret_token_round_trips(sys: System) -> None:
    async with http_client(base_url=sys.base) as http:
        r = await http.post(
            "/webhooks/telegram", json=TG_MESSAGE, headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret-token"}
        )
        assert r.status_code == 200
    conv = await wait_for(lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.TELEGRAM, "1111111:1365")))
    sent = await reply(sys, conv["id"], "Welcome!")
    await message_status(sys, conv["id"], sent["message_id"], "sent")
    tg = [r for r in sys.fake.requests if r.path == "/bot123456:ABC-DEF/sendMessage"]
    assert tg[-1].json == {"chat_id": "1111111", "text": "Welcome!"}


@pytest.mark.parametrize(("header", "status"), [(None, 401), ("wrong", 403)])
async def test_telegram_rejects_a_missing_or_wrong_secret_token(
    embedded: System, header: str | None, status: int
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": header} if header else {}
    async with http_client(base_url=embedded.base) as http:
        r = await http.post("/webhooks/telegram", json=TG_MESSAGE, headers=headers)
    assert r.status_code == status and events_on_bus(embedded) == 0


# -- Twilio SMS ---------------------------------------------------------------------------------------------


async def test_twilio_sms_signed_with_the_official_validator_round_trips(sys: System) -> None:
    url = f"{sys.base}/webhooks/twilio/sms"
    form = twilio_form("SM" + "a" * 32)
    signature = RequestValidator(SECRETS["twilio_auth_token"]).compute_signature(url, form)
    async with http_client() as http:
        r = await http.post(url, data=form, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert ElementTree.fromstring(r.text).tag == "Response"
    conv = await wait_for(lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.SMS, "SM" + "a" * 32)))
    assert conv["messages"][0]["text"] == "hello by sms"
    sent = await reply(sys, conv["id"], "Got it")
    await message_status(sys, conv["id"], sent["message_id"], "sent")
    (api,) = [r for r in sys.fake.requests if r.path.endswith("/Messages.json") and r.form["Body"] == "Got it"]
    assert api.path == f"/2010-04-01/Accounts/{SECRETS['twilio_account_sid']}/Messages.json"
    assert sys.fake.basic_auth(api) == (SECRETS["twilio_account_sid"], SECRETS["twilio_auth_token"])
    assert api.form == {"From": "+15550001111", "To": "+14155550100", "Body": "Got it"}


@pytest.mark.parametrize("tamper", ["missing", "wrong-token", "changed-param"])
async def test_twilio_rejects_bad_signatures(embedded: System, tamper: str) -> None:
    url = f"{embedded.base}/webhooks/twilio/sms"
    form = twilio_form("SM" + "b" * 32)
    token = "x" * 32 if tamper == "wrong-token" else SECRETS["twilio_auth_token"]
    headers = {"X-Twilio-Signature": RequestValidator(token).compute_signature(url, form)}
    if tamper == "missing":
        headers = {}
    if tamper == "changed-param":
        form = {**form, "Body": "changed"}
    async with http_client() as http:
        r = await http.post(url, data=form, headers=headers)
    assert r.status_code == (401 if tamper == "missing" else 403) and events_on_bus(embedded) == 0


async def test_delivery_retries_transient_errors_and_shows_permanent_failures(embedded: System) -> None:
    url = f"{embedded.base}/webhooks/twilio/sms"
    form = twilio_form("SM" + "c" * 32, sender="+14155550199")
    sig = RequestValidator(SECRETS["twilio_auth_token"]).compute_signature(url, form)
    async with http_client() as http:
        await http.post(url, data=form, headers={"X-Twilio-Signature": sig})
    conv = await wait_for(
        lambda: conversation_of(embedded.desk, embedded.connectors.event_id(Channel.SMS, "SM" + "c" * 32))
    )
    embedded.fake.fail_next = [503, 500]
    sent = await reply(embedded, conv["id"], "after two retries")
    await message_status(embedded, conv["id"], sent["message_id"], "sent")
    embedded.fake.fail_next = [400]
    failed = await reply(embedded, conv["id"], "refused")
    msg = await message_status(embedded, conv["id"], failed["message_id"], "failed")
    assert "400" in msg["error"]
    async with embedded.desk.router.repo.reader() as conn:
        items = await timelines.timeline(conn, embedded.tenant, conv["customer_id"], None, 50)
    assert any(i["kind"] == "delivery_failed" and i["data"]["message_id"] == failed["message_id"] for i in items)


# -- Email --------------------------------------------------------------------------------------------------


def customer_mail(subject: str, body: str, message_id: str, **headers: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = "Sam Doe <sam@example.com>"
    mail["To"] = "support@acme.test"
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    for k, v in headers.items():
        mail[k.replace("_", "-")] = v
    mail.set_content(body)
    return mail


async def test_email_over_smtp_is_threaded_and_the_reply_keeps_the_thread(sys: System) -> None:
    first = customer_mail("Where is my order?", "My order has not arrived.\n\n-- \nSam", "<q1@mail.example.com>")
    await asyncio.to_thread(_smtp_send, sys.settings.smtp_port, first)
    conv = await wait_for(
        lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.EMAIL, "<q1@mail.example.com>"))
    )
    msg = conv["messages"][0]
    assert (msg["subject"], msg["text"], msg["channel_message_id"]) == (
        "Where is my order?",
        "My order has not arrived.",
        "<q1@mail.example.com>",
    )

    sent = await reply(sys, conv["id"], "It ships today.")
    await message_status(sys, conv["id"], sent["message_id"], "sent")
    out = sys.relay.messages[-1]
    assert out["To"] == "sam@example.com" and out["Subject"] == "Re: Where is my order?"
    assert out["In-Reply-To"] == "<q1@mail.example.com>"
    assert "<q1@mail.example.com>" in out["References"]
    assert out["Reply-To"].addresses[0].addr_spec == f"support+{conv['id']}@switchboard.localhost"
    ours = str(out["Message-ID"])

    answer = customer_mail(
        "Re: Where is my order?",
        "Great, thanks!\n\nOn Mon, ACME wrote:\n> It ships today.",
        "<q2@mail.example.com>",
        In_Reply_To=ours,
        References=f"<q1@mail.example.com> {ours}",
    )
    await asyncio.to_thread(_smtp_send, sys.settings.smtp_port, answer)
    again = await wait_for(
        lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.EMAIL, "<q2@mail.example.com>"))
    )
    assert again["id"] == conv["id"]
    assert [m["text"] for m in again["messages"] if m["direction"] == "inbound"] == [
        "My order has not arrived.",
        "Great, thanks!",
    ]


def _smtp_send(port: int, mail: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(mail)


async def test_a_reply_from_another_address_to_our_reply_token_joins_the_conversation(embedded: System) -> None:
    first = customer_mail("Help", "Please help", "<t1@mail.example.com>")
    await asyncio.to_thread(_smtp_send, embedded.settings.smtp_port, first)
    conv = await wait_for(
        lambda: conversation_of(embedded.desk, embedded.connectors.event_id(Channel.EMAIL, "<t1@mail.example.com>"))
    )
    other = customer_mail("Re: Help", "From my phone's mail app", "<t2@mail.example.net>")
    other.replace_header("From", "sam.alias@example.net")
    other.replace_header("To", f"support+{conv['id']}@switchboard.localhost")
    await asyncio.to_thread(_smtp_send, embedded.settings.smtp_port, other)
    joined = await wait_for(
        lambda: conversation_of(embedded.desk, embedded.connectors.event_id(Channel.EMAIL, "<t2@mail.example.net>"))
    )
    assert joined["id"] == conv["id"]


async def test_inbound_parse_webhook_accepts_signed_mime_and_refuses_unsigned(embedded: System) -> None:
    raw = customer_mail("Via webhook", "Hello from the parse API", "<wh1@mail.example.com>").as_bytes()
    signed, again = signed_email_fields(), signed_email_fields()
    async with http_client(base_url=embedded.base) as http:
        unsigned = await http.post("/webhooks/email/inbound", data={"body-mime": raw.decode()})
        assert unsigned.status_code == 401
        forged = await http.post(
            "/webhooks/email/inbound", data={**signed, "signature": "0" * 64, "body-mime": raw.decode()}
        )
        assert forged.status_code == 403
        ok = await http.post("/webhooks/email/inbound", data={**signed, "body-mime": raw.decode()})
        assert ok.json() == {"status": "accepted"}
        parsed = await http.post(
            "/webhooks/email/inbound",
            data={
                **again,
                "sender": "pat@example.com",
                "recipient": "support@acme.test",
                "subject": "Fields mode",
                "body-plain": "Sent as fields",
                "Message-Id": "<wh2@mail.example.com>",
            },
        )
        assert parsed.json() == {"status": "accepted"}
    conv = await wait_for(lambda: conversation_of(embedded.desk, email_event(embedded, signed)))
    assert conv["messages"][0]["text"] == "Hello from the parse API"
    conv2 = await wait_for(lambda: conversation_of(embedded.desk, email_event(embedded, again)))
    assert conv2["messages"][0]["subject"] == "Fields mode"


async def test_a_captured_inbound_parse_request_cannot_be_replayed(embedded: System) -> None:
    """Mailgun's signature covers timestamp + token only: a capture must not carry another body, nor work later."""
    raw = customer_mail("Original", "The real message", "<orig@mail.example.com>").as_bytes()
    forged = customer_mail("Forged", "Wire the refund to me", "<forged@mail.example.com>").as_bytes()
    signed = signed_email_fields()
    async with http_client(base_url=embedded.base) as http:
        assert (
            await http.post("/webhooks/email/inbound", data={**signed, "body-mime": raw.decode()})
        ).status_code == 200
        # the provider retries the same delivery: answered, not stored twice
        retry = await http.post("/webhooks/email/inbound", data={**signed, "body-mime": raw.decode()})
        assert retry.json() == {"status": "duplicate"}
        # the captured signature with another body: refused
        replay = await http.post("/webhooks/email/inbound", data={**signed, "body-mime": forged.decode()})
        assert replay.status_code == 403
        # a signature older than the window: refused, whatever the body
        stale = signed_email_fields(timestamp=str(int(time.time()) - 301))
        late = await http.post("/webhooks/email/inbound", data={**stale, "body-mime": forged.decode()})
        assert late.status_code == 403
        # another connector replica (its own cache) takes the replay: the event id is the token's, and the router
        # stores an event id once, so the forged body never reaches the desk
        (email,) = [c for c in embedded.connectors.connectors if c.name == "email"]
        email._tokens = ReplayCache(600)  # type: ignore[attr-defined]
        other = await http.post("/webhooks/email/inbound", data={**signed, "body-mime": forged.decode()})
        assert other.json() == {"status": "accepted"}
        await wait_for(lambda: _all_processed(embedded))
    conv = await wait_for(lambda: conversation_of(embedded.desk, email_event(embedded, signed)))
    texts = [m["text"] for m in conv["messages"]]
    assert texts.count("The real message") == 1 and "Wire the refund to me" not in texts


async def test_a_relay_may_sign_the_body_itself(embedded: System) -> None:
    raw = customer_mail("Relayed", "Signed over the body", "<relayed@mail.example.com>").as_bytes()
    form = {"body-mime": raw.decode()}
    body, content_type = httpx.Request("POST", "http://x", data=form).read(), "application/x-www-form-urlencoded"
    key = SECRETS["email_webhook_signing_key"].encode()

    def signature(t: int, payload: bytes) -> str:
        return f"t={t},v1=" + hmac.new(key, f"{t}.".encode() + payload, hashlib.sha256).hexdigest()

    now = int(time.time())
    async with http_client(base_url=embedded.base) as http:
        headers = {"content-type": content_type}
        ok = await http.post(
            "/webhooks/email/inbound",
            content=body,
            headers={**headers, "x-switchboard-signature": signature(now, body)},
        )
        assert ok.json() == {"status": "accepted"}, ok.text
        tampered = body.replace(b"Signed", b"Forged")
        bad = await http.post(
            "/webhooks/email/inbound",
            content=tampered,
            headers={**headers, "x-switchboard-signature": signature(now, body)},
        )
        assert bad.status_code == 403
        old = await http.post(
            "/webhooks/email/inbound",
            content=body,
            headers={**headers, "x-switchboard-signature": signature(now - 301, body)},
        )
        assert old.status_code == 403


async def _all_processed(system: System) -> bool:
    """The router has caught up with everything published so far (the replayed event included)."""
    marker = customer_mail("Marker", "after the replay", f"<marker-{time.time_ns()}@mail.example.com>").as_bytes()
    async with http_client(base_url=system.base) as http:
        signed = signed_email_fields()
        await http.post("/webhooks/email/inbound", data={**signed, "body-mime": marker.decode()})
    return await wait_for(lambda: conversation_of(system.desk, email_event(system, signed))) is not None


def email_event(system: System, signed: dict[str, str]) -> str:
    return system.connectors.event_id(Channel.EMAIL, f"webhook-token:{signed['token']}")


async def test_an_auto_reply_starts_no_conversation(embedded: System) -> None:
    ooo = customer_mail("Out of office", "Back Monday", "<ooo@mail.example.com>", Auto_Submitted="auto-replied")
    await asyncio.to_thread(_smtp_send, embedded.settings.smtp_port, ooo)
    marker = customer_mail("Real", "A real question", "<real@mail.example.com>")
    await asyncio.to_thread(_smtp_send, embedded.settings.smtp_port, marker)
    await wait_for(
        lambda: conversation_of(embedded.desk, embedded.connectors.event_id(Channel.EMAIL, "<real@mail.example.com>"))
    )
    assert (
        await conversation_of(embedded.desk, embedded.connectors.event_id(Channel.EMAIL, "<ooo@mail.example.com>"))
        is None
    )


async def test_an_oversized_webhook_body_is_refused_with_413(embedded: System) -> None:
    body = b'{"object":"page","entry":[],"pad":"' + b"x" * 70_000 + b'"}'
    async with http_client(base_url=embedded.base) as http:
        r = await http.post("/webhooks/meta", content=body, headers=meta_headers(body))
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert events_on_bus(embedded) == 0


async def test_statuses_never_move_backwards_and_redelivery_is_harmless(embedded: System) -> None:
    from datetime import UTC, datetime

    from shared.bus import Outgoing
    from shared.outbound import DeliveryState, DeliveryStatus, encode

    async with http_client(base_url=embedded.base) as http:
        await http.post(
            "/webhooks/telegram", json=TG_MESSAGE, headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret-token"}
        )
    conv = await wait_for(
        lambda: conversation_of(embedded.desk, embedded.connectors.event_id(Channel.TELEGRAM, "1111111:1365"))
    )
    sent = await reply(embedded, conv["id"], "hello")
    await message_status(embedded, conv["id"], sent["message_id"], "sent")

    def status(state: DeliveryState) -> Outgoing:
        body = DeliveryStatus(
            tenant=embedded.tenant,
            message_id=sent["message_id"],
            conversation_id=conv["id"],
            channel=Channel.TELEGRAM,
            state=state,
            time=datetime.now(UTC),
        )
        return Outgoing(embedded.desk.router.topics.status, encode(body), conv["id"].encode())

    await embedded.desk.bus.publish(
        [
            status(DeliveryState.DELIVERED),
            status(DeliveryState.SENT),
            status(DeliveryState.QUEUED),
            status(DeliveryState.DELIVERED),
        ]
    )
    await message_status(embedded, conv["id"], sent["message_id"], "delivered")
    await asyncio.sleep(0.5)
    await message_status(embedded, conv["id"], sent["message_id"], "delivered")
