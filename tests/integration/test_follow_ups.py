"""Follow-up after a resolution: a queue that has it on checks in once, on the conversation's channel and in the
customer's language, when it is due; the customer's reply reopens the conversation even after the reopen
window; consent withdrawn, or the customer writing again first, skips it with the reason on the timeline.

The router's clock is moved by the test, and the production shape runs on a database of its own: a moved clock
would make other tests' follow-ups in a shared database due too. The expected texts are written out here."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.routing_commands import Resolve
from tests.support.databases import create_database, drop_database
from tests.support.runtime import Desk, admin_client, arrive, settings_for, started_desk, texted

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday
ENGLISH = (
    "Hello again! We marked your request as solved. Is everything working for you now? "
    "If not, just reply to this message and we will pick it up."
)
GERMAN = (
    "Hallo noch einmal! Wir haben Ihre Anfrage als gelöst markiert. Ist jetzt alles in Ordnung? "
    "Falls nicht, antworten Sie einfach auf diese Nachricht, und wir kümmern uns darum."
)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Setup:
    def __init__(self, desk: Desk, api: httpx.AsyncClient, clock: Clock) -> None:
        self.desk, self.api, self.clock = desk, api, clock

    async def follow_up_everywhere(self, options: dict[str, Any] | bool) -> None:
        r = await self.api.get("/v1/queues")
        assert r.status_code == 200, r.text
        for queue in r.json():
            patched = await self.api.patch(f"/v1/queues/{queue['id']}", json={"routing": {"follow_up": options}})
            assert patched.status_code == 200, patched.text

    async def texts(self, phone: str, text: str) -> dict[str, Any]:
        event = texted(self.desk.tenant, phone, text)
        return await arrive(self.desk, event)

    async def resolve(self, conversation_id: str) -> None:
        await self.desk.router.commands.run(self.desk.tenant, Resolve(conversation_id=conversation_id, note="done"))

    async def tick(self, at: datetime) -> int:
        self.clock.now = at
        return await self.desk.router.follow_ups.tick()

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        r = await self.api.get(f"/v1/conversations/{conversation_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def from_system(self, conversation_id: str) -> list[tuple[str, str]]:
        """(channel, text) of what the desk sent on its own after the acknowledgement."""
        messages = (await self.conversation(conversation_id))["messages"]
        sent = [(m["channel"], m["text"]) for m in messages if m["direction"] == "outbound" and m["author"] == "system"]
        return sent[1:]  # the first is the acknowledgement of the new conversation

    async def timeline(self, customer_id: str, kind: str) -> list[dict[str, Any]]:
        r = await self.api.get(f"/v1/customers/{customer_id}/timeline")
        assert r.status_code == 200, r.text
        return [item for item in r.json()["items"] if item["kind"] == kind]


@pytest.fixture(params=["embedded", "production"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    own_database = None
    overrides: dict[str, Any] = dict(routing_tick_s=3600, survey_kind="none", reopen_window_hours=1.0)
    servers = None
    if request.param == "production":
        servers = request.getfixturevalue("servers")
        own_database = await create_database(servers.database_url, f"switchboard_follow_up_{random.randrange(10**9)}")
        overrides["database_url"] = own_database
    settings = settings_for(request.param, tmp_path, servers, **overrides)
    clock = Clock(START)
    try:
        async with started_desk(settings, clock=clock) as desk, admin_client(desk) as api:
            yield Setup(desk, api, clock)
    finally:
        if own_database is not None:
            await drop_database(own_database)


async def test_a_resolved_conversation_is_checked_on_once_and_the_reply_reopens_it(setup: Setup) -> None:
    await setup.follow_up_everywhere({"after_s": 86_400})
    conv = await setup.texts("+14155550101", "my router keeps dropping")
    await setup.resolve(conv["id"])

    assert await setup.tick(START + timedelta(hours=23)) == 0, "not due before a day has passed"
    assert await setup.from_system(conv["id"]) == []

    assert await setup.tick(START + timedelta(days=1, seconds=1)) == 1
    assert await setup.from_system(conv["id"]) == [("sms", ENGLISH)]
    [entry] = await setup.timeline(conv["customer_id"], "followed_up")
    assert entry["conversation_id"] == conv["id"] and entry["data"]["channel"] == "sms"
    assert entry["data"]["language"] == "en"
    assert await setup.tick(START + timedelta(days=3)) == 0, "once per resolution"
    assert len(await setup.from_system(conv["id"])) == 1

    # 24 h after the resolution, past the one-hour reopen window, but 30 minutes after the follow-up
    setup.clock.now = START + timedelta(days=1, minutes=30)
    again = await setup.texts("+14155550101", "no, it dropped again this morning")
    assert again["id"] == conv["id"], "the reply reopens the conversation the follow-up asked about"
    assert (await setup.conversation(conv["id"]))["status"] == "open"
    assert [e["conversation_id"] for e in await setup.timeline(conv["customer_id"], "reopened")] == [conv["id"]]


async def test_the_check_in_is_in_the_customers_language_and_waits_for_the_queue_to_open(setup: Setup) -> None:
    # open Monday to Friday 09:00-17:00 in Berlin (UTC+1 in November)
    hours = {"timezone": "Europe/Berlin", "week": {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}
    r = await setup.api.get("/v1/queues")
    for queue in r.json():
        routing = {"hours": hours, "follow_up": {"after_s": 4 * 86_400}}
        assert (await setup.api.patch(f"/v1/queues/{queue['id']}", json={"routing": routing})).status_code == 200
    conv = await setup.texts("+14155550102", "Rechnung doppelt")
    assert (await setup.api.patch(f"/v1/customers/{conv['customer_id']}", json={"language": "de-AT"})).is_success
    await setup.resolve(conv["id"])  # Monday 10:00 Berlin: due Friday 10:00, open

    setup.clock.now = START + timedelta(days=4, hours=8)  # Friday 18:00 Berlin: due, but closed until Monday
    resolved_saturday = await setup.texts("+14155550103", "another one")
    await setup.resolve(resolved_saturday["id"])  # Friday 18:00 Berlin → due Tuesday 18:00, closed → Wed 09:00

    assert await setup.tick(START + timedelta(days=4, hours=8, minutes=1)) == 1
    assert await setup.from_system(conv["id"]) == [("sms", GERMAN)]
    assert await setup.tick(START + timedelta(days=8, hours=8, minutes=30)) == 0, "Tuesday 18:30: closed"
    assert await setup.tick(START + timedelta(days=9, minutes=1)) == 1, "Wednesday 09:01 Berlin: open"
    assert await setup.from_system(resolved_saturday["id"]) == [("sms", ENGLISH)]


async def test_consent_withdrawn_or_the_customer_back_first_skips_it_and_the_timeline_says_why(setup: Setup) -> None:
    await setup.follow_up_everywhere(True)  # the defaults: two days after
    withdrawn = await setup.texts("+14155550104", "cancel my plan")
    r = await setup.api.patch(f"/v1/customers/{withdrawn['customer_id']}", json={"consent": {"sms": False}})
    assert r.status_code == 200, r.text
    back = await setup.texts("+14155550105", "where is my refund")
    reopened = await setup.texts("+14155550106", "password reset")
    for conv in (withdrawn, back, reopened):
        await setup.resolve(conv["id"])

    setup.clock.now = START + timedelta(minutes=30)
    assert (await setup.texts("+14155550106", "still locked out"))["id"] == reopened["id"]
    await setup.resolve(reopened["id"])  # resolved again, 30 minutes later: its check-in counts from now
    setup.clock.now = START + timedelta(hours=2)
    assert (await setup.texts("+14155550105", "a new question"))["id"] != back["id"], "past the reopen window"

    assert await setup.tick(START + timedelta(days=2, seconds=1)) == 0
    assert await setup.from_system(withdrawn["id"]) == [] and await setup.from_system(back["id"]) == []
    [entry] = await setup.timeline(withdrawn["customer_id"], "follow_up_skipped")
    assert entry["conversation_id"] == withdrawn["id"]
    assert entry["data"] == {
        "reason": "consent_withdrawn",
        "purpose": "follow_up",
        "channel": "sms",
        "allowed_channels": ["whatsapp"],  # the phone number reaches WhatsApp too
    }
    [entry] = await setup.timeline(back["customer_id"], "follow_up_skipped")
    assert (entry["conversation_id"], entry["data"]) == (back["id"], {"reason": "wrote_again"})

    assert await setup.tick(START + timedelta(days=2, minutes=31)) == 1
    assert await setup.from_system(reopened["id"]) == [("sms", ENGLISH)]


async def test_a_follow_up_configuration_routing_could_not_use_is_refused(setup: Setup) -> None:
    r = await setup.api.get("/v1/queues")
    queue = r.json()[0]["id"]
    for bad in ({"after_s": 10}, {"channels": {"fax": True}}, {"templates": {"EN": "hi"}}, {"every": 3}):
        refused = await setup.api.patch(f"/v1/queues/{queue}", json={"routing": {"follow_up": bad}})
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
