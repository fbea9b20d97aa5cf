"""In-app customers hear back: a customer's message in through POST /v1/messages, the agent's reply delivered to
the app's backend (a real HTTP server here, checking the signature with its own HMAC, as an app would), the
backend's answer back as the message's status, and the survey after the resolve answered from the app.
Refusals and outages of the backend end as they do on every channel: failed with the reason, or retried."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.router.adapters.db import tables as t
from shared.routing_commands import Resolve
from tests.support.runtime import admin_client, conversation_of, free_port, wait_for
from tests.support.system import System, system

DELIVERY_SECRET = "in-app-delivery-secret-0123456789"
IDENTITY_SECRET = "in-app-identity-secret-0123456789"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def body(self) -> Any:
        return json.loads(self.raw)


@dataclass
class AppBackend:
    """The app's backend: takes deliveries, answers with what the test scripted (then 200 "delivered")."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)

    def of(self, message_id: str) -> list[Received]:
        return [r for r in self.received if r.headers.get("switchboard-message-id") == message_id]


@contextmanager
def app_backend() -> Iterator[AppBackend]:
    backend = AppBackend()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            backend.received.append(Received(self.path, headers, raw, time.time()))
            status, answer = (
                backend.answers.pop(0)
                if backend.answers
                else (200, json.dumps({"status": "delivered", "id": f"app-{len(backend.received)}"}).encode())
            )
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    backend.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/switchboard"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield backend
    finally:
        server.shutdown()
        server.server_close()


def signed_by_switchboard(r: Received) -> bool:
    """The receiver's check, written from the contract (docs/in-app.md) rather than with Switchboard's code:
    ``t=<unix time>,v1=<hex HMAC-SHA256 over "<t>." + raw body>``, the time within five minutes."""
    parts = dict(p.split("=", 1) for p in r.headers["switchboard-signature"].split(","))
    expected = hmac.new(DELIVERY_SECRET.encode(), f"{parts['t']}.".encode() + r.raw, hashlib.sha256).hexdigest()
    return abs(r.at - int(parts["t"])) <= 300 and hmac.compare_digest(expected, parts["v1"])


@pytest.fixture
def backend() -> Iterator[AppBackend]:
    with app_backend() as b:
        yield b


def in_app_system(
    request: pytest.FixtureRequest, shape: str, tmp_path: Path, backend: AppBackend
) -> AbstractAsyncContextManager[System]:
    """A desk with the in-app connector delivering to ``backend``."""
    servers = request.getfixturevalue("servers") if shape == "production" else None
    return system(
        shape,
        tmp_path,
        servers,
        names=("inapp",),
        inapp_delivery_url=backend.url,
        inapp_delivery_secret=DELIVERY_SECRET,
        inapp_identity_secret=IDENTITY_SECRET,
    )


def customer(external_id: str) -> dict[str, str]:
    user_hash = hmac.new(IDENTITY_SECRET.encode(), external_id.encode(), hashlib.sha256).hexdigest()
    return {"external_id": external_id, "user_hash": user_hash}


async def write_in_app(api: httpx.AsyncClient, s: System, external_id: str, text: str) -> dict[str, Any]:
    """The customer writes in the app (the app's backend posts it); the conversation once it is stored."""
    r = await api.post("/v1/messages", json={"customer": customer(external_id), "text": text})
    assert r.status_code == 202, r.text
    conv: dict[str, Any] = await wait_for(lambda: conversation_of(s.desk, r.json()["event_id"]))
    return conv


async def message_state(api: httpx.AsyncClient, conversation_id: str, message_id: str) -> dict[str, Any]:
    conv = (await api.get(f"/v1/conversations/{conversation_id}")).json()
    return next(m for m in conv["messages"] if m["id"] == message_id)


async def surveys_of(s: System, conversation_id: str) -> list[Any]:
    v = t.surveys.c
    async with s.desk.router.repo.reader() as conn:
        return list(await conn.execute(select(t.surveys).where(v.conversation_id == conversation_id)))


@pytest.fixture
async def embedded(
    request: pytest.FixtureRequest, tmp_path: Path, backend: AppBackend
) -> AsyncIterator[tuple[System, httpx.AsyncClient]]:
    async with in_app_system(request, "embedded", tmp_path, backend) as s, admin_client(s.desk) as api:
        yield s, api


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_in_app_round_trip_reply_signed_to_the_app_status_back_survey_answered(
    request: pytest.FixtureRequest, shape: str, tmp_path: Path, backend: AppBackend
) -> None:
    external_id = f"u-{uuid.uuid4().hex[:8]}"
    async with in_app_system(request, shape, tmp_path, backend) as s, admin_client(s.desk) as api:
        conv = await write_in_app(api, s, external_id, "The app logs me out every hour")
        reply = await api.post(f"/v1/conversations/{conv['id']}/reply", json={"text": "Fixed in 2.1, please update"})
        assert reply.status_code == 202, reply.text
        sent = reply.json()
        assert (sent["channel"], sent["to"], sent["status"]) == ("in_app", {"kind": "app_user"}, "queued")

        async def arrived() -> list[Received]:
            return backend.of(sent["message_id"])

        [got] = await wait_for(arrived)
        assert got.path == "/hooks/switchboard" and got.headers["content-type"] == "application/json"
        assert signed_by_switchboard(got)
        assert not signed_by_switchboard(Received(got.path, got.headers, got.raw + b" ", got.at)), "the MAC binds"
        body = got.body
        assert body.pop("created_at")
        assert body == {
            "type": "switchboard.message.outbound",
            "schema_version": 1,
            "message_id": sent["message_id"],
            "tenant": s.tenant,
            "conversation_id": conv["id"],
            "customer": {"external_id": external_id},
            "text": "Fixed in 2.1, please update",
        }

        async def delivered() -> dict[str, Any] | None:
            m = await message_state(api, conv["id"], sent["message_id"])
            return m if m["status"] == "delivered" else None

        shown = await wait_for(delivered)
        # the app's own id (the backend numbers what it received; the acknowledgement came first) comes back
        n = backend.received.index(got) + 1
        assert shown["channel_message_id"] == f"app-{n}", "the app's own id comes back with the status"

        await s.desk.router.commands.run(s.tenant, Resolve(conversation_id=conv["id"], note="shipped 2.1"))

        async def asked() -> Received | None:
            return next((r for r in backend.received if "survey" in r.body), None)

        question = await wait_for(asked)
        assert signed_by_switchboard(question)
        card = question.body["survey"]
        assert (card["kind"], card["min"], card["max"]) == ("csat", 1, 5)
        assert question.body["text"].endswith("Reply with a number from 1 to 5.")
        assert question.body["customer"] == {"external_id": external_id}

        # the customer answers in the app: a number, which answers the survey and does not reopen
        await api.post("/v1/messages", json={"customer": customer(external_id), "text": "5 thanks!"})

        async def answered() -> Any:
            rows = await surveys_of(s, conv["id"])
            return rows[0] if rows and rows[0].answered_at is not None else None

        row = await wait_for(answered)
        assert (row.score, row.comment, row.channel, row.kind) == (5, "thanks!", "in_app", "csat")
        assert (await api.get(f"/v1/conversations/{conv['id']}")).json()["status"] == "resolved"


async def test_a_backend_outage_is_retried_with_a_fresh_signature_until_it_takes_the_reply(
    embedded: tuple[System, httpx.AsyncClient], backend: AppBackend
) -> None:
    s, api = embedded
    conv = await write_in_app(api, s, f"u-{uuid.uuid4().hex[:8]}", "hello?")
    backend.answers += [(503, b"{}"), (429, b"{}"), (200, b"")]  # then an empty 200: sent, not delivered
    sent = (await api.post(f"/v1/conversations/{conv['id']}/reply", json={"text": "Hello!"})).json()

    async def state() -> str | None:
        m = await message_state(api, conv["id"], sent["message_id"])
        return m["status"] if m["status"] != "queued" else None

    assert await wait_for(state) == "sent"
    tries = backend.of(sent["message_id"])
    assert len(tries) == 3 and all(signed_by_switchboard(r) for r in tries)
    assert len({r.raw for r in tries}) == 1, "the same body each time: the app dedupes on its message_id"


async def test_a_backend_that_refuses_fails_the_reply_and_the_agent_sees_why(
    embedded: tuple[System, httpx.AsyncClient], backend: AppBackend
) -> None:
    s, api = embedded
    conv = await write_in_app(api, s, f"u-{uuid.uuid4().hex[:8]}", "hello?")
    backend.answers.append((410, b'{"error": "app uninstalled"}'))
    sent = (await api.post(f"/v1/conversations/{conv['id']}/reply", json={"text": "Hello!"})).json()

    async def failed() -> dict[str, Any] | None:
        m = await message_state(api, conv["id"], sent["message_id"])
        return m if m["status"] == "failed" else None

    shown = await wait_for(failed)
    assert shown["error"].startswith("in_app 410") and "app uninstalled" in shown["error"]
    assert len(backend.of(sent["message_id"])) == 1, "a refusal is not retried"
    timeline = (await api.get(f"/v1/customers/{conv['customer_id']}/timeline")).json()["items"]
    assert [e["data"]["message_id"] for e in timeline if e["kind"] == "delivery_failed"] == [sent["message_id"]]
