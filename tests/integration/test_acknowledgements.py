"""The customer always hears back: a new conversation on each channel (email over SMTP, chat, WhatsApp,
Telegram, SMS, in-app) gets exactly one acknowledgement, at the provider's stand-in, saying when to expect an
answer from the queue's SLA target and business hours, in the customer's language; none for mail no person
wrote; outside hours the opening time in the queue's time zone, across a DST change; none where the customer
withdrew consent, with the timeline saying so.

The router's clock is frozen at a chosen moment; the expected texts are written out by hand (the promise worked
out from the default targets and the hours below), not computed with the code under test."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from services.router.adapters.db import tables as t
from services.router.adapters.views import timeline as timelines
from services.router.handlers.acknowledgements import Opened
from shared.events import Channel
from shared.routing_commands import Resolve
from tests.integration.test_in_app_delivery import DELIVERY_SECRET, IDENTITY_SECRET, AppBackend, app_backend, customer
from tests.support.http import http_client
from tests.support.runtime import admin_client, conversation_of, wait_for
from tests.support.system import SECRETS, System, system

# Monday to Friday, 09:00-17:00 in Berlin, on every queue of the desk.
HOURS = {"timezone": "Europe/Berlin", "week": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
OPEN = datetime(2026, 3, 25, 9, 30, tzinfo=UTC)  # Wednesday 10:30 CET
CLOSED = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Saturday 13:00 CET; CEST from Sunday the 29th

GERMAN = "Guten Tag, meine Bestellung ist noch nicht angekommen. Können Sie mir bitte helfen?"
SPANISH = "Hola, mi pedido todavía no ha llegado y necesito ayuda, por favor."
ENGLISH = "Hello, my parcel has not arrived yet, could you help me please?"

# What each channel's customer is told on Wednesday 10:30 CET. The default first-response targets: email 24 h,
# chat 2 min, WhatsApp / Telegram / SMS 1 h, in-app 15 min. Email's 24 business hours: 6.5 h Wednesday, 8 h
# Thursday, 8 h Friday, 1.5 h Monday: Monday 30 March 10:30 (CEST by then).
EXPECTED = {
    "email": "Vielen Dank für Ihre Nachricht. Wir haben sie erhalten und melden uns bis "
    "Montag, 30. März um 10:30 Uhr (Europe/Berlin).",
    "chat": "Thank you for your message. We have received it and will get back to you within 2 minutes.",
    "whatsapp": "Gracias por su mensaje. Lo hemos recibido y le responderemos en un plazo de 1 hora.",
    "telegram": "Thank you for your message. We have received it and will get back to you within 1 hour.",
    "sms": "Vielen Dank für Ihre Nachricht. Wir haben sie erhalten und melden uns innerhalb von 1 Stunde.",
    "in_app": "Gracias por su mensaje. Lo hemos recibido y le responderemos en un plazo de 15 minutos.",
}


class Frozen:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class Desk:
    s: System
    backend: AppBackend
    api: httpx.AsyncClient
    clock: Frozen


@asynccontextmanager
async def desk_at(
    shape: str, tmp_path: Path, servers: Any, at: datetime, hours: dict[str, Any] | None = HOURS, **overrides: Any
) -> AsyncIterator[Desk]:
    """``tests.support.system`` with the router's clock frozen at ``at``, the in-app connector delivering to a
    local app backend, and ``hours`` on every queue."""
    clock = Frozen(at)
    with app_backend() as backend:
        async with (
            system(
                shape,
                tmp_path,
                servers,
                names=("email", "chat", "meta", "telegram", "twilio", "inapp"),
                clock=clock,
                public_base_url="https://care.example.com",
                inapp_delivery_url=backend.url,
                inapp_delivery_secret=DELIVERY_SECRET,
                inapp_identity_secret=IDENTITY_SECRET,
                **overrides,
            ) as s,
            admin_client(s.desk) as api,
        ):
            for q in ("q-messaging", "q-email", "q-general"):
                r = await api.patch(f"/v1/queues/{s.tenant}-{q}", json={"routing": {"hours": hours}})
                assert r.status_code == 200, r.text
            yield Desk(s, backend, api, clock)


# -- each channel as its customer writes, and what reached them ---------------------------------------------


async def send_email(d: Desk, n: int, text: str, *headers: tuple[str, str], sender: str = "sam@example.com") -> str:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = sender, "support@acme.test", "Bestellung"
    mail["Message-ID"] = message_id = f"<ack-{n}-{uuid.uuid4().hex[:8]}@mail.example.com>"
    for name, value in headers:
        mail[name] = value
    mail.set_content(text)
    await asyncio.to_thread(_smtp_send, d.s.settings.smtp_port, mail)
    return d.s.connectors.event_id(Channel.EMAIL, message_id)


def _smtp_send(port: int, mail: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(mail)


def emails_to(d: Desk, address: str) -> list[str]:
    bodies = [m.get_body() for m in d.s.relay.messages if m["To"] == address]
    return [b.get_content().strip() for b in bodies if b is not None]


class ChatVisitor:
    def __init__(self, d: Desk) -> None:
        self.d = d
        self.frames: list[dict[str, Any]] = []
        self.visitor = ""
        self._ws: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ChatVisitor:
        self._ws = await websockets.connect(self.d.s.base.replace("http://", "ws://") + "/chat/ws")
        self.visitor = json.loads(await self._ws.recv())["visitor_token"].rpartition(".")[0]
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for raw in self._ws:
            self.frames.append(json.loads(raw))

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await self._ws.close()

    async def say(self, text: str) -> str:
        client_id = str(uuid.uuid4())
        await self._ws.send(json.dumps({"type": "message", "id": client_id, "text": text}))
        return self.d.s.connectors.event_id(Channel.CHAT, f"{self.visitor}:{client_id}")

    def replies(self) -> list[str]:
        return [f["text"] for f in self.frames if f["type"] == "reply"]


def whatsapp(wamid: str, text: str) -> dict[str, Any]:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "PHONE_NUMBER_ID"},
        "contacts": [{"profile": {"name": "Ana"}, "wa_id": "34600000001"}],
        "messages": [
            {"from": "34600000001", "id": wamid, "timestamp": "1774431000", "type": "text", "text": {"body": text}}
        ],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }


async def send_whatsapp(d: Desk, n: int, text: str) -> str:
    wamid = f"wamid.ACK{n}{uuid.uuid4().hex[:6]}"
    body = orjson.dumps(whatsapp(wamid, text))
    sig = hmac.new(SECRETS["meta_app_secret"].encode(), body, hashlib.sha256).hexdigest()
    async with http_client(base_url=d.s.base) as http:
        r = await http.post(
            "/webhooks/meta",
            content=body,
            headers={"X-Hub-Signature-256": f"sha256={sig}", "Content-Type": "application/json"},
        )
    assert r.status_code == 200, r.text
    return d.s.connectors.event_id(Channel.WHATSAPP, wamid)


def whatsapp_texts(d: Desk) -> list[str]:
    return [r.json["text"]["body"] for r in d.s.fake.requests if r.path == "/v21.0/PHONE_NUMBER_ID/messages"]


async def send_telegram(d: Desk, n: int, text: str) -> str:
    update = {
        "update_id": 900000 + n,
        "message": {
            "message_id": 7000 + n,
            "from": {"id": 2222222, "is_bot": False, "first_name": "Tom"},
            "chat": {"id": 2222222, "type": "private"},
            "date": 1774431000,
            "text": text,
        },
    }
    async with http_client(base_url=d.s.base) as http:
        r = await http.post(
            "/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret-token"}
        )
    assert r.status_code == 200, r.text
    return d.s.connectors.event_id(Channel.TELEGRAM, f"2222222:{7000 + n}")


def telegram_texts(d: Desk) -> list[str]:
    return [r.json["text"] for r in d.s.fake.requests if r.path.endswith("/sendMessage")]


async def send_sms(d: Desk, n: int, text: str) -> str:
    sid = f"SM{n:02d}{uuid.uuid4().hex[:30]}"
    url = f"{d.s.base}/webhooks/twilio/sms"
    form = {
        "MessageSid": sid,
        "AccountSid": SECRETS["twilio_account_sid"],
        "From": "+4915100000001",
        "To": "+15550001111",
        "Body": text,
        "NumMedia": "0",
    }
    signed = RequestValidator(SECRETS["twilio_auth_token"]).compute_signature(
        "https://care.example.com/webhooks/twilio/sms", form
    )
    async with http_client() as http:
        r = await http.post(url, data=form, headers={"X-Twilio-Signature": signed})
    assert r.status_code == 200, r.text
    return d.s.connectors.event_id(Channel.SMS, sid)


def sms_texts(d: Desk) -> list[str]:
    return [r.form["Body"] for r in d.s.fake.requests if r.path.endswith("/Messages.json")]


async def send_in_app(d: Desk, n: int, text: str) -> str:
    who = {**customer("u-ack-1"), "language": "es"}
    r = await d.api.post("/v1/messages", json={"customer": who, "text": text})
    assert r.status_code == 202, r.text
    return str(r.json()["event_id"])


def in_app_texts(d: Desk) -> list[str]:
    return [r.body["text"] for r in d.backend.received]


async def system_messages(d: Desk, conversation_id: str) -> list[Any]:
    m = t.messages.c
    async with d.s.desk.router.repo.reader() as conn:
        rows = await conn.execute(
            select(m.text, m.author, m.status, m.event_id).where(
                m.conversation_id == conversation_id, m.sender_kind == "system"
            )
        )
        return list(rows)


async def timeline(d: Desk, customer_id: str) -> list[dict[str, Any]]:
    async with d.s.desk.router.repo.reader() as conn:
        return list(await timelines.timeline(conn, d.s.tenant, customer_id, None, 100))


async def exactly_one(d: Desk, conversation_id: str, delivered: Callable[[], list[str]], expected: str) -> None:
    async def arrived() -> list[str]:
        return delivered()

    assert await wait_for(arrived) == [expected]
    [row] = await system_messages(d, conversation_id)
    assert (row.text, row.author, row.event_id) == (expected, "system", f"acknowledgement:{conversation_id}")


# -- acceptance -------------------------------------------------------------------------------------------------


CHANNELS: dict[str, tuple[Callable[[Desk, int, str], Awaitable[str]], Callable[[Desk], list[str]], str]] = {
    "email": (send_email, lambda d: emails_to(d, "sam@example.com"), GERMAN),
    "whatsapp": (send_whatsapp, whatsapp_texts, SPANISH),
    "telegram": (send_telegram, telegram_texts, ENGLISH),
    "sms": (send_sms, sms_texts, GERMAN),
    "in_app": (send_in_app, in_app_texts, "¿Dónde está mi pedido?"),
}


@pytest.mark.parametrize(
    ("channel", "shape"),
    [
        ("email", "embedded"),
        ("whatsapp", "embedded"),
        ("telegram", "embedded"),
        ("sms", "embedded"),
        ("in_app", "embedded"),
        ("email", "production"),
        ("sms", "production"),
    ],
)
async def test_a_new_conversation_hears_once_when_to_expect_an_answer_in_the_customers_language(
    request: pytest.FixtureRequest, tmp_path: Path, channel: str, shape: str
) -> None:
    servers = request.getfixturevalue("servers") if shape == "production" else None
    send, delivered, words = CHANNELS[channel]
    async with desk_at(shape, tmp_path, servers, OPEN) as d:
        first = await send(d, 1, words)
        conv = await wait_for(lambda: conversation_of(d.s.desk, first))
        await exactly_one(d, conv["id"], lambda: delivered(d), EXPECTED[channel])

        # the customer writes again (and the desk redelivers): still one acknowledgement
        second = await send(d, 2, words)
        again = await wait_for(lambda: conversation_of(d.s.desk, second))
        assert again["id"] == conv["id"]
        async with d.s.desk.router.repo.unit() as u:
            opened = Opened(d.s.tenant, conv["id"], channel, None, "de", None, None)
            acknowledgements = d.s.desk.router.stage.acknowledgements
            assert acknowledgements is not None and await acknowledgements.acknowledge(u, [opened], OPEN) == 0
        await asyncio.sleep(0.5)
        assert delivered(d) == [EXPECTED[channel]]
        notes = [i for i in await timeline(d, conv["customer_id"]) if i["kind"] == "acknowledged"]
        assert len(notes) == 1 and notes[0]["data"]["channel"] == channel


async def test_web_chat_hears_within_the_chat_target(tmp_path: Path) -> None:
    async with desk_at("embedded", tmp_path, None, OPEN) as d, ChatVisitor(d) as visitor:
        first = await visitor.say(ENGLISH)
        conv = await wait_for(lambda: conversation_of(d.s.desk, first))
        await exactly_one(d, conv["id"], visitor.replies, EXPECTED["chat"])
        second = await visitor.say("Any news?")
        assert (await wait_for(lambda: conversation_of(d.s.desk, second)))["id"] == conv["id"]
        await asyncio.sleep(0.5)
        assert visitor.replies() == [EXPECTED["chat"]]


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_an_email_out_of_hours_is_told_when_the_queue_opens_in_its_time_zone_across_dst(
    request: pytest.FixtureRequest, tmp_path: Path, shape: str
) -> None:
    # Saturday 13:00 CET. The queue opens Monday 30 March 09:00 CEST (07:00 UTC: the clocks went forward on
    # Sunday); 24 business hours from then: Monday, Tuesday, Wednesday 1 April until 17:00 CEST (15:00 UTC).
    servers = request.getfixturevalue("servers") if shape == "production" else None
    async with desk_at(shape, tmp_path, servers, CLOSED) as d:
        event = await send_email(d, 1, ENGLISH)
        conv = await wait_for(lambda: conversation_of(d.s.desk, event))
        expected = (
            "Thank you for your message. We are closed right now and open again on Monday 30 March at 09:00 "
            "(Europe/Berlin). We will get back to you by Wednesday 1 April at 17:00 (Europe/Berlin)."
        )
        await exactly_one(d, conv["id"], lambda: emails_to(d, "sam@example.com"), expected)
        out = d.s.relay.messages[0]
        assert out["Subject"] == "Re: Bestellung" and out["In-Reply-To"]
        [note] = [i for i in await timeline(d, conv["customer_id"]) if i["kind"] == "acknowledged"]
        assert note["data"]["opens_at"] == "2026-03-30T07:00:00+00:00"
        assert note["data"]["promised_at"] == "2026-04-01T15:00:00+00:00"


async def test_no_acknowledgement_for_auto_replies_bounces_or_list_mail(tmp_path: Path) -> None:
    async with desk_at("embedded", tmp_path, None, OPEN) as d:
        auto = await send_email(
            d, 1, "I am out of office.", ("Auto-Submitted", "auto-replied"), sender="ooo@example.com"
        )
        bounce = await send_email(d, 2, "Undeliverable.", ("Return-Path", "<>"), sender="mailer-daemon@example.com")
        listed = await send_email(
            d,
            3,
            ENGLISH,
            ("List-Id", "<users.lists.example.org>"),
            ("Precedence", "list"),
            sender="users@lists.example.org",
        )
        person = await send_email(d, 4, ENGLISH, sender="kim@example.com")
        conv = await wait_for(lambda: conversation_of(d.s.desk, person))
        await wait_for(lambda: asyncio.sleep(0, emails_to(d, "kim@example.com")))
        list_conv = await wait_for(lambda: conversation_of(d.s.desk, listed))  # an agent can still read it
        await asyncio.sleep(0.5)
        assert [m["To"] for m in d.s.relay.messages] == ["kim@example.com"]
        assert await conversation_of(d.s.desk, auto) is None and await conversation_of(d.s.desk, bounce) is None
        assert await system_messages(d, list_conv["id"]) == []
        skipped = [i for i in await timeline(d, list_conv["customer_id"]) if i["kind"] == "acknowledgement_skipped"]
        assert [s["data"] for s in skipped] == [{"reason": "automated", "kind": "list"}]
        assert len(await system_messages(d, conv["id"])) == 1


async def test_consent_withdrawn_for_the_channel_skips_the_acknowledgement_on_the_timeline(tmp_path: Path) -> None:
    async with desk_at("embedded", tmp_path, None, OPEN, reopen_window_hours=0) as d:
        first = await send_sms(d, 1, GERMAN)
        conv = await wait_for(lambda: conversation_of(d.s.desk, first))
        await wait_for(lambda: asyncio.sleep(0, sms_texts(d)))
        r = await d.api.patch(f"/v1/customers/{conv['customer_id']}", json={"consent": {"sms": False}})
        assert r.status_code == 200, r.text
        await d.s.desk.router.commands.run(d.s.tenant, Resolve(conversation_id=conv["id"], note="done"))
        d.clock.at = OPEN + timedelta(minutes=5)  # past the reopen window (none): the next message opens anew
        second = await send_sms(d, 2, GERMAN)
        later = await wait_for(lambda: conversation_of(d.s.desk, second))
        assert later["id"] != conv["id"], "a new conversation"

        async def skipped() -> list[dict[str, Any]]:
            items = await timeline(d, conv["customer_id"])
            return [i for i in items if i["kind"] == "acknowledgement_skipped" and i["conversation_id"] == later["id"]]

        [entry] = await wait_for(skipped)
        assert entry["data"] == {
            "reason": "consent_withdrawn",
            "purpose": "acknowledgement",
            "channel": "sms",
            "allowed_channels": ["whatsapp"],  # the same phone number, not withdrawn there
        }
        await asyncio.sleep(0.5)
        assert sms_texts(d) == [EXPECTED["sms"]], "the first conversation's, nothing after the withdrawal"
        assert await system_messages(d, later["id"]) == []


async def test_a_queue_that_turned_acknowledgements_off_sends_none(tmp_path: Path) -> None:
    async with desk_at("embedded", tmp_path, None, OPEN) as d:
        r = await d.api.patch(
            f"/v1/queues/{d.s.tenant}-q-messaging",
            json={"routing": {"hours": HOURS, "acknowledgement": {"channels": {"sms": False}}}},
        )
        assert r.status_code == 200, r.text
        bad = await d.api.patch(
            f"/v1/queues/{d.s.tenant}-q-messaging",
            json={"routing": {"acknowledgement": {"templates": {"en": {"by": "by {when}"}}}}},
        )
        assert bad.status_code == 422, bad.text
        event = await send_sms(d, 1, GERMAN)
        conv = await wait_for(lambda: conversation_of(d.s.desk, event))
        await asyncio.sleep(0.5)
        assert sms_texts(d) == [] and await system_messages(d, conv["id"]) == []


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_the_acknowledged_entry_is_its_own_entry_after_its_message_paged_exported_and_erased_like_any(
    request: pytest.FixtureRequest, tmp_path: Path, shape: str
) -> None:
    """The "acknowledged" entry is read from the acknowledgement's message, no row of its own in ``timeline``,
    yet it is an entry of its own: its own seq, after the message's and before what was written next (the
    resolution), so a timeline paged one entry at a time lists every entry exactly once. The export lists it
    with the same data, and erasure keeps it with its data blanked."""
    servers = request.getfixturevalue("servers") if shape == "production" else None
    async with desk_at(shape, tmp_path, servers, OPEN) as d:
        first = await send_sms(d, 1, GERMAN)
        conv = await wait_for(lambda: conversation_of(d.s.desk, first))
        await exactly_one(d, conv["id"], lambda: sms_texts(d), EXPECTED["sms"])
        await d.s.desk.router.commands.run(d.s.tenant, Resolve(conversation_id=conv["id"], note="done"))
        customer_id = conv["customer_id"]

        async def read(limit: int, cursor: str | None = None) -> dict[str, Any]:
            params: dict[str, Any] = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            r = await d.api.get(f"/v1/customers/{customer_id}/timeline", params=params)
            assert r.status_code == 200, r.text
            return dict(r.json())

        whole = (await read(100))["items"]
        paged, cursor = [], None
        while True:
            page = await read(1, cursor)
            paged += page["items"]
            if (cursor := page["next_cursor"]) is None:
                break
        assert paged == whole
        seqs = [e["seq"] for e in whole]
        assert seqs == sorted(set(seqs), reverse=True)
        [ack] = [e for e in whole if e["kind"] == "acknowledged"]
        [message] = [e for e in whole if e["kind"] == "message" and e["text"] == EXPECTED["sms"]]
        [resolved] = [e for e in whole if e["kind"] == "resolved"]
        assert message["seq"] < ack["seq"] < resolved["seq"]
        assert set(ack) == {"seq", "kind", "conversation_id", "at", "data"} and ack["conversation_id"] == conv["id"]
        assert set(ack["data"]) == {
            "message_id", "channel", "language", "promised_at", "opens_at", "expected_wait_s", "queue_id"
        }  # fmt: skip
        assert (ack["data"]["message_id"], ack["data"]["channel"]) == (message["message_id"], "sms")
        assert (ack["data"]["language"], ack["data"]["promised_at"]) == ("de", "2026-03-25T10:30:00+00:00")
        async with d.s.desk.router.repo.reader() as conn:
            tl = t.timeline.c
            copies = await conn.execute(select(tl.seq).where(tl.customer_id == customer_id, tl.kind == "acknowledged"))
            assert copies.all() == [], "derived from the message, not stored twice"

        exported = (await d.api.get(f"/v1/customers/{customer_id}/export")).json()
        [entry] = [e for e in exported["events"] if e["kind"] == "acknowledged"]
        assert datetime.fromisoformat(entry.pop("at")) == datetime.fromisoformat(ack["at"])
        assert entry == {"kind": "acknowledged", "conversation_id": conv["id"], "channel": None, "data": ack["data"]}
        assert (await d.api.delete(f"/v1/customers/{customer_id}")).status_code == 200
        after = (await read(100))["items"]
        assert [(e["seq"], e["kind"]) for e in after] == [(e["seq"], e["kind"]) for e in whole]
        assert [e["data"] for e in after if e["kind"] == "acknowledged"] == [{}]
