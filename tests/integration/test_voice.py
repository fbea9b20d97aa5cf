"""Voice through Twilio: signed call webhooks answered with TwiML, calls joining the caller's conversation and
put through to an agent with voice capacity 1, abandoned calls, no-answer → next agent, voicemail outside
hours, and callback requests. Outbound REST calls go to a local server that records the exact request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from services.router.adapters.db import tables as t
from services.router.domain.model import Presence
from shared.events import Channel, IdentityKind
from shared.routing_commands import SetPresence
from tests.support.http import http_client
from tests.support.runtime import conversation_of, inbound, publish, serving, wait_for
from tests.support.system import SECRETS, System, system

CALLER = "+14155550123"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@pytest.fixture(params=["embedded", "production"])
async def sys(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[System]:
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    async with system(request.param, tmp_path, servers, names=("voice",)) as s:
        yield s


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[System]:
    async with system("embedded", tmp_path, names=("voice",)) as s:
        yield s


async def twilio(s: System, path: str, form: dict[str, str], query: str = "", sign: bool = True) -> httpx.Response:
    url = f"{s.base}/webhooks/twilio/voice{path}" + (f"?{query}" if query else "")
    headers = {}
    if sign:
        headers["X-Twilio-Signature"] = RequestValidator(SECRETS["twilio_auth_token"]).compute_signature(url, form)
    async with http_client() as http:
        return await http.post(url, data=form, headers=headers)


def call_form(sid: str, caller: str = CALLER, **extra: str) -> dict[str, str]:
    return {
        "CallSid": sid,
        "AccountSid": SECRETS["twilio_account_sid"],
        "From": caller,
        "To": "+15550001111",
        "CallStatus": "ringing",
        "Direction": "inbound",
        **extra,
    }


def verbs(response: httpx.Response) -> list[ElementTree.Element]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = ElementTree.fromstring(response.text)
    assert root.tag == "Response"
    return list(root)


async def call_updates(s: System, sid: str, want: int = 1) -> list[ElementTree.Element]:
    """The TwiML of each Calls API update of a call, once ``want`` of them arrived."""

    async def check() -> list[Any] | None:
        seen = [r for r in s.fake.requests if r.path.endswith(f"/Calls/{sid}.json")]
        return seen if len(seen) >= want else None

    seen = await wait_for(check)
    for r in seen:
        assert r.path == f"/2010-04-01/Accounts/{SECRETS['twilio_account_sid']}/Calls/{sid}.json"
        assert s.fake.basic_auth(r) == (SECRETS["twilio_account_sid"], SECRETS["twilio_auth_token"])
    return [ElementTree.fromstring(r.form["Twiml"]) for r in seen]


def dialed(twiml: ElementTree.Element) -> tuple[str, str]:
    """(who, action URL) of a <Dial>."""
    (dial,) = list(twiml)
    assert dial.tag == "Dial"
    (noun,) = list(dial)
    return f"{noun.tag.lower()}:{noun.text}", dial.attrib["action"]


async def conv_of_call(s: System, sid: str) -> dict[str, Any]:
    return dict(await wait_for(lambda: conversation_of(s.desk, s.connectors.event_id(Channel.VOICE, sid))))


async def presence(s: System, agent: str, value: str) -> None:
    await s.desk.router.commands.run(s.tenant, SetPresence(agent_id=s.desk.agent(agent), presence=Presence(value)))


async def test_call_webhooks_are_verified_and_answered_with_twiml(embedded: System) -> None:
    s = embedded
    held = verbs(await twilio(s, "", call_form("CA" + "1" * 32)))
    assert [v.tag for v in held] == ["Say", "Enqueue"]
    assert held[1].text == "switchboard"
    assert held[1].attrib == {"waitUrl": "/webhooks/twilio/voice/wait", "action": "/webhooks/twilio/voice/queue-result"}
    assert (await twilio(s, "", call_form("CA" + "2" * 32), sign=False)).status_code == 401
    form = call_form("CA" + "3" * 32)
    url = f"{s.base}/webhooks/twilio/voice"
    forged = RequestValidator(SECRETS["twilio_auth_token"]).compute_signature(url, {**form, "From": "+19999999999"})
    async with http_client() as http:
        assert (await http.post(url, data=form, headers={"X-Twilio-Signature": forged})).status_code == 403

    hold = verbs(
        await twilio(s, "/wait", call_form("CA" + "1" * 32, QueueTime="30", QueuePosition="2", AvgQueueTime="170"))
    )
    assert [v.tag for v in hold] == ["Say", "Pause"]
    assert "number 2 in line" in (hold[0].text or "") and "about 3 minutes" in (hold[0].text or "")
    too_long = verbs(await twilio(s, "/wait", call_form("CA" + "1" * 32, QueueTime="301")))
    assert [v.tag for v in too_long] == ["Leave"]
    voicemail = verbs(await twilio(s, "/queue-result", call_form("CA" + "1" * 32, QueueResult="leave")))
    assert [v.tag for v in voicemail] == ["Say", "Record"]
    assert voicemail[1].attrib["transcribe"] == "true"
    assert voicemail[1].attrib["action"] == "/webhooks/twilio/voice/recording"


async def test_a_call_joins_the_callers_whatsapp_conversation_and_voice_capacity_is_one(sys: System) -> None:
    s = sys
    ada, grace = s.desk.agent("agent-ada"), s.desk.agent("agent-grace")
    wa = inbound(s.tenant, CALLER, "my order is late", channel=Channel.WHATSAPP, kind=IdentityKind.PHONE, verified=True)
    await publish(s.desk, wa)
    chat = await wait_for(lambda: conversation_of(s.desk, wa.id))
    assert chat["agent_id"] == ada

    first = "CA" + "a" * 32
    verbs(await twilio(s, "", call_form(first)))
    call = await conv_of_call(s, first)
    assert call["id"] == chat["id"]  # the same customer, the same open conversation
    (twiml,) = await call_updates(s, first)
    who, action = dialed(twiml)
    assert who == f"client:{ada}"
    assert action == f"/webhooks/twilio/voice/dial-result?conversation={chat['id']}&agent={ada}"

    await presence(s, "agent-grace", "online")
    second = "CA" + "b" * 32
    verbs(await twilio(s, "", call_form(second, caller="+14155550999")))
    (twiml,) = await call_updates(s, second)
    assert dialed(twiml)[0] == f"client:{grace}"  # Ada is on a call: no second one for her
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        agents = (await http.get("/v1/stats/agents", headers={"Authorization": f"Bearer {s.desk.key}"})).json()
    load = {a["agent_id"]: a["load"] for a in agents["items"]}
    assert load[ada] == {"voice": 1} and load[grace] == {"voice": 1}

    # the call ends: the conversation goes back to WhatsApp and Ada's voice capacity is free again
    verbs(await twilio(s, "/status", call_form(first, CallStatus="completed", CallDuration="95")))

    async def back_on_whatsapp() -> Any:
        async with s.desk.router.repo.reader() as conn:
            a = t.assignments.c
            rows = await conn.execute(select(a.channel).where(a.conversation_id == chat["id"], a.ended_at.is_(None)))
            return [r.channel for r in rows] == ["whatsapp"]

    await wait_for(back_on_whatsapp)
    log = [m["text"] for m in (await conv_of_call(s, first))["messages"]]
    assert "Call completed (95 s)" in log


async def test_an_abandoned_call_leaves_the_queue_at_once(embedded: System) -> None:
    s = embedded
    await presence(s, "agent-ada", "away")
    sid = "CA" + "c" * 32
    verbs(await twilio(s, "", call_form(sid)))
    conv = await conv_of_call(s, sid)
    assert conv["agent_id"] is None and conv["status"] == "open"
    verbs(await twilio(s, "/queue-result", call_form(sid, QueueResult="hangup", QueueTime="42")))

    async def resolved() -> Any:
        c = await conv_of_call(s, sid)
        return c if c["status"] == "resolved" else None

    done = await wait_for(resolved)
    assert "abandoned" in (done["resolution_note"] or "")
    async with s.desk.router.repo.reader() as conn:
        c = t.conversations.c
        assert (await conn.execute(select(c.abandoned_at).where(c.id == conv["id"]))).scalar_one() is not None
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        auth = {"Authorization": f"Bearer {s.desk.key}"}
        queue = (await http.get(f"/v1/queues/{s.tenant}-q-general/waiting", headers=auth)).json()
        kpis = (await http.get("/v1/stats/kpis", headers=auth)).json()["items"][0]
    assert queue["items"] == []
    assert kpis["abandon_rate"] == 1.0 and kpis["time_to_abandon_s"]["median"] is not None


async def test_an_agent_who_does_not_pick_up_is_skipped_for_the_next(sys: System) -> None:
    s = sys
    await presence(s, "agent-grace", "online")
    sid = "CA" + "d" * 32
    verbs(await twilio(s, "", call_form(sid)))
    (first,) = await call_updates(s, sid)
    who, action = dialed(first)
    _, _, query = action.partition("?")
    back = verbs(
        await twilio(s, "/dial-result", call_form(sid, DialCallStatus="no-answer", DialCallSid="CA9"), query=query)
    )
    assert [v.tag for v in back] == ["Say", "Enqueue"]  # the caller holds again
    _, second = await call_updates(s, sid, want=2)
    other = dialed(second)[0]
    assert other != who and other in {f"client:{s.desk.agent('agent-ada')}", f"client:{s.desk.agent('agent-grace')}"}
    conv = await conv_of_call(s, sid)
    assert f"client:{conv['agent_id']}" == other


async def set_hours(s: System, hours: dict[str, Any]) -> None:
    """The business hours of the general queue, where calls go."""
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        r = await http.patch(
            f"/v1/queues/{s.tenant}-q-general",
            json={"routing": {"hours": hours}},
            headers={"Authorization": f"Bearer {s.desk.key}"},
        )
        assert r.status_code == 200, r.text


async def test_outside_hours_the_caller_is_told_and_leaves_a_voicemail(embedded: System) -> None:
    s = embedded
    await set_hours(s, {"timezone": "UTC", "week": {}})  # never open
    sid = "CA" + "e" * 32
    verbs(await twilio(s, "", call_form(sid)))
    (twiml,) = await call_updates(s, sid)
    say, record = list(twiml)
    assert say.tag == "Say" and "closed" in (say.text or "") and record.tag == "Record"
    recording = call_form(
        sid, RecordingUrl="https://api.twilio.com/rec/RE1", RecordingDuration="12", RecordingSid="RE1"
    )
    assert [v.tag for v in verbs(await twilio(s, "/recording", recording))] == ["Say", "Hangup"]
    transcript = call_form(
        sid, TranscriptionText="Please call me about my refund", TranscriptionSid="TR1", TranscriptionStatus="completed"
    )
    verbs(await twilio(s, "/transcription", transcript))
    verbs(await twilio(s, "/status", call_form(sid, CallStatus="completed", CallDuration="30")))

    async def voicemail() -> Any:
        conv = await conv_of_call(s, sid)
        texts = [m["text"] for m in conv["messages"]]
        return (
            conv
            if "Voicemail transcription: Please call me about my refund" in texts and "Call completed (30 s)" in texts
            else None
        )

    conv = await wait_for(voicemail)
    assert conv["status"] == "open"  # a voicemail is not an abandoned call: it waits for a callback
    vm = next(m for m in conv["messages"] if m["text"] == "Voicemail (12 s)")
    assert vm["attachments"][0]["ref"] == "https://api.twilio.com/rec/RE1"


async def test_a_callback_request_is_routed_as_a_voice_task(embedded: System) -> None:
    s = embedded
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        r = await http.post(
            "/v1/callbacks",
            json={
                "customer": {"external_id": "u-cb", "phone": "+1 415 555 0777", "name": "Kim"},
                "window_start": "2026-11-24T09:00:00Z",
                "window_end": "2026-11-24T12:00:00Z",
                "note": "about the invoice",
            },
            headers={"Authorization": f"Bearer {s.desk.key}"},
        )
        assert r.status_code == 202, r.text
        bad = await http.post(
            "/v1/callbacks",
            json={"customer": {"external_id": "u-cb"}},
            headers={"Authorization": f"Bearer {s.desk.key}"},
        )
        assert bad.status_code == 422
    event_id = r.json()["event_id"]
    conv = await wait_for(lambda: conversation_of(s.desk, event_id))
    assert conv["agent_id"] == s.desk.agent("agent-ada")

    async def task() -> Any:
        e = t.agent_events.c
        async with s.desk.router.repo.reader() as conn:
            rows = await conn.execute(select(e.data).where(e.conversation_id == conv["id"], e.type == "assignment"))
            return [r.data for r in rows]

    (data,) = await wait_for(task)
    assert data["channel"] == "voice" and data["task"] == "callback" and data["phone"] == "+14155550777"
    assert "about the invoice" in data["request"] and "2026-11-24T09:00:00+00:00" in data["request"]


async def test_an_answered_call_stops_its_first_response_clock(embedded: System) -> None:
    s = embedded
    sid = "CA" + "f" * 32
    verbs(await twilio(s, "", call_form(sid)))
    (twiml,) = await call_updates(s, sid)
    (dial,) = list(twiml)
    (noun,) = list(dial)
    assert noun.attrib["statusCallbackEvent"] == "answered"
    answered_url = noun.attrib["statusCallback"]
    path, _, query = answered_url.partition("?")
    assert path == "/webhooks/twilio/voice/agent-answered"
    conv = await conv_of_call(s, sid)

    async def clock() -> list[tuple[str, Any]]:
        async with s.desk.router.repo.reader() as conn:
            st = t.sla_clocks.c
            rows = await conn.execute(
                select(st.kind, st.stopped_at).where(st.conversation_id == conv["id"], st.kind == "first_response")
            )
            return [(r.kind, r.stopped_at) for r in rows]

    assert [stopped for _, stopped in await clock()] == [None]  # ringing the agent is no answer yet
    leg = call_form("CA" + "9" * 32, CallStatus="in-progress", ParentCallSid=sid)
    verbs(await twilio(s, "/agent-answered", leg, query=query))

    async def stopped() -> bool:
        return all(at is not None for _, at in await clock())

    await wait_for(stopped)
    async with s.desk.router.repo.reader() as conn:
        c = t.conversations.c
        first = (await conn.execute(select(c.first_response_at).where(c.id == conv["id"]))).scalar_one()
    assert first is not None  # the KPI's first response: the agent picked up


async def test_a_callback_for_tomorrow_waits_for_its_window_and_holds_no_voice_slot(embedded: System) -> None:
    s = embedded
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).replace(hour=14, minute=0, second=0, microsecond=0)
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        r = await http.post(
            "/v1/callbacks",
            json={
                "customer": {"external_id": "u-later", "phone": "+1 415 555 0778"},
                "window_start": tomorrow.isoformat(),
                "window_end": (tomorrow + timedelta(hours=1)).isoformat(),
            },
            headers={"Authorization": f"Bearer {s.desk.key}"},
        )
        assert r.status_code == 202, r.text
    conv = await wait_for(lambda: conversation_of(s.desk, r.json()["event_id"]))
    assert conv["agent_id"] is None
    # Ada's one voice slot is free: a call now goes to her
    sid = "CA" + "7" * 32
    verbs(await twilio(s, "", call_form(sid, caller="+14155550779")))
    (twiml,) = await call_updates(s, sid)
    assert dialed(twiml)[0] == f"client:{s.desk.agent('agent-ada')}"
    assert (await conversation_of(s.desk, r.json()["event_id"]))["agent_id"] is None


async def test_a_closed_queue_tells_callers_its_opening_time_in_its_own_time_zone(embedded: System) -> None:
    s = embedded
    paris = {"timezone": "Europe/Paris", "week": {d: ["03:00-03:01"] for d in DAYS}}
    await set_hours(s, paris)
    sid = "CA" + "6" * 32
    verbs(await twilio(s, "", call_form(sid, caller="+14155550780")))
    (twiml,) = await call_updates(s, sid)
    say, *_ = list(twiml)
    assert say.tag == "Say" and "at 03:00." in (say.text or ""), say.text  # Paris time, not UTC (02:00 or 01:00)


async def test_a_caller_whose_language_is_known_hears_the_closed_prompt_in_it(embedded: System) -> None:
    s = embedded
    await set_hours(s, {"timezone": "Europe/Berlin", "week": {d: ["03:00-03:01"] for d in DAYS}})
    first = "CA" + "8" * 32
    verbs(await twilio(s, "", call_form(first, caller="+4930555000")))
    (english,) = await call_updates(s, first)
    assert english[0].attrib.get("language") == "en-US" and (english[0].text or "").startswith("We are closed")
    customer = (await conv_of_call(s, first))["customer_id"]
    async with serving(s.desk.router) as base, http_client(base_url=base) as http:
        r = await http.patch(
            f"/v1/customers/{customer}",
            json={"language": "de-DE"},
            headers={"Authorization": f"Bearer {s.desk.key}"},
        )
        assert r.status_code == 200, r.text
    verbs(await twilio(s, "/status", call_form(first, CallStatus="completed", CallDuration="5")))  # hung up
    again = "CA" + "9" * 32
    verbs(await twilio(s, "", call_form(again, caller="+4930555000")))
    (german,) = await call_updates(s, again)
    say = german[0]
    assert say.tag == "Say" and say.attrib.get("language") == "de-DE"
    assert (say.text or "").startswith("Wir sind gerade geschlossen und ab "), say.text
    assert "03:00 Uhr wieder für Sie da." in (say.text or ""), "Berlin time"
