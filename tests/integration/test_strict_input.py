"""Strict input: a field the API does not know is refused with 422 and a problem body naming it, on every
request body, so a misspelt field is never dropped unnoticed (a typo in "language" would otherwise route the
customer as if none were given)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.runtime import Desk, admin_client, settings_for, started_desk


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with started_desk(settings_for("embedded", tmp_path)) as d:
        yield d


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(desk) as client:
        yield client


def cases(desk: Desk) -> list[tuple[str, str, dict[str, object], list[object]]]:
    """(method, path, body with one unknown field, where the problem must point)."""
    ada = desk.agent("agent-ada")
    return [
        (
            "POST",
            "/v1/messages",
            {"customer": {"external_id": "u-1", "languge": "de"}, "text": "hi"},
            ["body", "customer", "languge"],
        ),
        (
            "POST",
            "/v1/messages",
            {"customer": {"external_id": "u-1"}, "text": "hi", "channel": "sms"},
            ["body", "channel"],
        ),
        ("PUT", f"/v1/agents/{ada}/presence", {"presence": "online", "mood": "happy"}, ["body", "mood"]),
        ("POST", f"/v1/agents/{ada}/accept", {"conversation_id": "c-1", "agent": ada}, ["body", "agent"]),
        ("POST", "/v1/conversations/c-1/reply", {"text": "hello", "txet": "hello"}, ["body", "txet"]),
        ("POST", "/v1/conversations/c-1/resolve", {"note": "done", "reason": "fixed"}, ["body", "reason"]),
        ("POST", "/v1/conversations/c-1/transfer", {"queue_id": "q", "priority": 1}, ["body", "priority"]),
        ("POST", "/v1/customers/c-1/merge", {"customer_id": "c-2", "force": True}, ["body", "force"]),
        ("POST", "/v1/api-keys", {"role": "agent", "agent_id": ada, "expires": "never"}, ["body", "expires"]),
    ]


async def test_an_unknown_field_is_a_422_naming_it(desk: Desk, api: httpx.AsyncClient) -> None:
    for method, path, body, where in cases(desk):
        r = await api.request(method, path, json=body)
        assert r.status_code == 422, (path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json", path
        locations = [e["loc"] for e in r.json()["errors"]]
        assert where in locations, (path, locations)


async def test_the_same_bodies_without_the_unknown_field_are_not_refused_for_it(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    r = await api.post("/v1/messages", json={"customer": {"external_id": "u-1", "language": "de"}, "text": "hi"})
    assert r.status_code == 202, r.text
    presence = await api.put(f"/v1/agents/{desk.agent('agent-ada')}/presence", json={"presence": "online"})
    assert presence.status_code == 200, presence.text
