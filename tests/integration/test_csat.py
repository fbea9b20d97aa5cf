"""CSAT round trips on chat, email and SMS: resolve → the question goes out on the customer's channel →
the customer answers the way that channel allows → the answer is on the conversation and in the KPIs."""

from __future__ import annotations

import asyncio
import json
import re
import smtplib
import uuid
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from services.router.adapters.db import tables as t
from shared.events import Channel
from shared.routing_commands import Resolve
from tests.support.http import http_client
from tests.support.runtime import conversation_of, serving, wait_for
from tests.support.system import SECRETS, System, system


@pytest.fixture(params=["embedded", "production"])
async def sys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    async with system(request.param, tmp_path, servers, public_base_url="https://care.example.com") as s:
        yield s


async def surveys_of(s: System, conversation_id: str) -> list[Any]:
    v = t.surveys.c
    async with s.desk.router.repo.reader() as conn:
        return list(await conn.execute(select(t.surveys).where(v.conversation_id == conversation_id)))


async def answered(s: System, conversation_id: str) -> Any:
    async def check() -> Any:
        rows = await surveys_of(s, conversation_id)
        return rows[0] if rows and rows[0].answered_at is not None else None

    return await wait_for(check)


async def kpis(s: System) -> dict[str, Any]:
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        r = await http.get("/v1/stats/kpis", headers={"Authorization": f"Bearer {s.desk.key}"})
    assert r.status_code == 200, r.text
    return dict(r.json()["items"][0])


async def test_csat_on_web_chat_is_a_rating_card_answered_by_the_widget(sys: System) -> None:
    url = sys.base.replace("http://", "ws://") + "/chat/ws"
    async with websockets.connect(url) as ws:
        visitor = json.loads(await ws.recv())["visitor_token"].rpartition(".")[0]
        first = str(uuid.uuid4())
        await ws.send(json.dumps({"type": "message", "id": first, "text": "My app crashes"}))
        assert json.loads(await ws.recv())["type"] == "ack"
        conv = await wait_for(
            lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.CHAT, f"{visitor}:{first}"))
        )
        acknowledgement = json.loads(await asyncio.wait_for(ws.recv(), 5))  # docs/acknowledgements.md
        assert acknowledgement["text"].startswith("Thank you for your message.")
        await sys.desk.router.replies.reply(sys.tenant, conv["id"], "Fixed in 2.1", None, "agent")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["text"] == "Fixed in 2.1"
        await sys.desk.router.commands.run(sys.tenant, Resolve(conversation_id=conv["id"], note="updated the app"))
        card = json.loads(await asyncio.wait_for(ws.recv(), 5))
    survey = card["survey"]
    assert (survey["kind"], survey["min"], survey["max"]) == ("csat", 1, 5)
    async with serving(sys.desk.router) as base, http_client(base_url=base) as http:
        ok = await http.post(f"/v1/surveys/{survey['token']}", json={"score": 5, "comment": "quick!"})
        assert ok.status_code == 200, ok.text
        twice = await http.post(f"/v1/surveys/{survey['token']}", json={"score": 1})
        assert twice.status_code == 409
        unknown = await http.post(f"/v1/surveys/{'x' * 32}", json={"score": 3})
        assert unknown.status_code == 404
    row = await answered(sys, conv["id"])
    assert (row.score, row.comment, row.channel) == (5, "quick!", "chat")
    k = await kpis(sys)
    assert (k["csat_avg"], k["csat_response_rate"]) == (5.0, 1.0)


async def test_csat_by_email_is_a_link_to_a_form(sys: System) -> None:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "Sam <sam@example.com>", "support@switchboard.localhost", "Refund?"
    mail["Message-ID"] = "<csat1@mail.example.com>"
    mail.set_content("Can I get a refund?")
    await asyncio.to_thread(_smtp_send, sys.settings.smtp_port, mail)
    conv = await wait_for(
        lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.EMAIL, "<csat1@mail.example.com>"))
    )
    await sys.desk.router.commands.run(sys.tenant, Resolve(conversation_id=conv["id"], note="refunded"))

    async def survey_mail() -> Any:
        return next((m for m in sys.relay.messages if "/survey/" in m.get_body().get_content()), None)

    out = await wait_for(survey_mail)
    assert out["To"] == "sam@example.com"
    link = re.search(r"https://care\.example\.com(/survey/[\w-]+)", out.get_body().get_content())
    assert link is not None
    async with serving(sys.desk.router) as base, http_client(base_url=base) as http:
        page = await http.get(link.group(1))
        assert page.status_code == 200 and 'name="score"' in page.text and 'value="5"' in page.text
        sent = await http.post(link.group(1), data={"score": "4", "comment": "fine"})
        assert sent.status_code == 200 and "Thank you" in sent.text
    row = await answered(sys, conv["id"])
    assert (row.score, row.comment, row.channel) == (4, "fine", "email")


async def test_csat_by_sms_is_answered_with_a_number_that_does_not_reopen(sys: System) -> None:
    url = f"{sys.base}/webhooks/twilio/sms"
    validator = RequestValidator(SECRETS["twilio_auth_token"])

    async def text_us(sid: str, body: str) -> None:
        form = {
            "MessageSid": sid,
            "AccountSid": SECRETS["twilio_account_sid"],
            "From": "+14155550199",
            "To": "+15550001111",
            "Body": body,
            "NumMedia": "0",
        }
        async with http_client() as http:
            # the signature covers the public URL Twilio calls (SWITCHBOARD_PUBLIC_BASE_URL)
            signed = validator.compute_signature("https://care.example.com/webhooks/twilio/sms", form)
            r = await http.post(url, data=form, headers={"X-Twilio-Signature": signed})
        assert r.status_code == 200

    await text_us("SM" + "c" * 32, "my card was charged twice")
    conv = await wait_for(lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.SMS, "SM" + "c" * 32)))
    await sys.desk.router.commands.run(sys.tenant, Resolve(conversation_id=conv["id"], note="refunded the duplicate"))

    def question() -> Any:
        return next((r for r in sys.fake.requests if "Reply with a number" in (r.form or {}).get("Body", "")), None)

    async def asked() -> Any:
        return question()

    sms = await wait_for(asked)
    assert sms.form["To"] == "+14155550199" and "1 (poor) to 5 (excellent)" in sms.form["Body"]
    await text_us("SM" + "d" * 32, " 2 ")
    row = await answered(sys, conv["id"])
    assert (row.score, row.channel) == (2, "sms")
    after = await conversation_of(sys.desk, sys.connectors.event_id(Channel.SMS, "SM" + "d" * 32))
    assert after is not None and after["id"] == conv["id"] and after["status"] == "resolved"  # not reopened
    # a later number is a normal message again: the survey is answered
    await text_us("SM" + "e" * 32, "3")
    later = await wait_for(lambda: conversation_of(sys.desk, sys.connectors.event_id(Channel.SMS, "SM" + "e" * 32)))
    assert later["status"] == "open"


def _smtp_send(port: int, mail: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(mail)
