"""Bad requests to POST /v1/messages get a 4xx with an RFC 9457 problem body; nothing reaches the bus."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from shared.bus_memory import MemoryBus
from tests.support.runtime import Desk, asgi_client, settings_for, started_desk

VALID = {"customer": {"external_id": "u-1"}, "text": "hello"}


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    async with started_desk(settings_for("embedded", tmp_path, max_body_bytes=4096, max_text_chars=500)) as d:
        yield d


@pytest.fixture
async def http(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    from services.router.entrypoints.http.app import create_app

    async with asgi_client(create_app(desk.router, manage_lifecycle=False)) as client:
        yield client


def events_on_bus(desk: Desk) -> int:
    assert isinstance(desk.bus, MemoryBus)
    return len(desk.bus.records(desk.router.topics.events))


def assert_problem(r: httpx.Response, status: int) -> dict:  # type: ignore[type-arg]
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({}, "missing"),
        ({"Authorization": "Bearer sb_wrong-key"}, "wrong key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "wrong scheme"),
        ({"Authorization": "Bearer "}, "empty"),
    ],
)
async def test_missing_or_wrong_credentials_get_401(
    http: httpx.AsyncClient, desk: Desk, headers: dict[str, str], why: str
) -> None:
    r = await http.post("/v1/messages", json=VALID, headers=headers)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert events_on_bus(desk) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"text": "no customer"},
        {"customer": {"external_id": "u-1"}},
        {"customer": {}, "text": "no external id"},
        {"customer": {"external_id": ""}, "text": "empty id"},
        {"customer": {"external_id": "u-1"}, "text": ""},
        {"customer": {"external_id": 42}, "text": "wrong type"},
        {"customer": "u-1", "text": "wrong type"},
        {"customer": {"external_id": "u-1"}, "text": ["wrong", "type"]},
        {"customer": {"external_id": "u-1", "email": "not-an-email"}, "text": "x"},
        [],
    ],
)
async def test_missing_fields_and_wrong_types_get_422_naming_the_field(
    http: httpx.AsyncClient, desk: Desk, body: object
) -> None:
    r = await http.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {desk.key}"})
    problem = assert_problem(r, 422)
    assert problem["errors"] and all("loc" in e for e in problem["errors"])
    assert events_on_bus(desk) == 0


async def test_malformed_json_gets_422(http: httpx.AsyncClient, desk: Desk) -> None:
    r = await http.post(
        "/v1/messages",
        content=b'{"customer": ',
        headers={"Authorization": f"Bearer {desk.key}", "Content-Type": "application/json"},
    )
    assert_problem(r, 422)


async def test_body_over_the_size_limit_gets_413(http: httpx.AsyncClient, desk: Desk) -> None:
    big = {"customer": {"external_id": "u-1"}, "text": "x" * 5000}
    r = await http.post("/v1/messages", json=big, headers={"Authorization": f"Bearer {desk.key}"})
    assert_problem(r, 413)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(10):
            yield b"x" * 1000

    streamed = await http.post(
        "/v1/messages",
        content=chunks(),
        headers={"Authorization": f"Bearer {desk.key}", "Content-Type": "application/json"},
    )
    assert_problem(streamed, 413)
    assert events_on_bus(desk) == 0


async def test_text_over_the_length_limit_gets_422_naming_the_field(http: httpx.AsyncClient, desk: Desk) -> None:
    r = await http.post(
        "/v1/messages",
        json={"customer": {"external_id": "u"}, "text": "y" * 501},
        headers={"Authorization": f"Bearer {desk.key}"},
    )
    problem = assert_problem(r, 422)
    assert problem["type"] == "/problems/validation" and problem["detail"].startswith("body.text: ")
    assert [e["loc"] for e in problem["errors"]] == [["body", "text"]]
    assert events_on_bus(desk) == 0


async def test_a_valid_message_gets_202_with_its_event_id_and_idempotency_key_makes_retries_one_event(
    http: httpx.AsyncClient, desk: Desk
) -> None:
    auth = {"Authorization": f"Bearer {desk.key}", "Idempotency-Key": "order-1234-q1"}
    first = await http.post("/v1/messages", json=VALID, headers=auth)
    retry = await http.post("/v1/messages", json=VALID, headers=auth)
    assert first.status_code == retry.status_code == 202
    assert first.json()["event_id"] == retry.json()["event_id"]


async def test_reads_of_unknown_or_foreign_ids_are_404_problems(http: httpx.AsyncClient, desk: Desk) -> None:
    auth = {"Authorization": f"Bearer {desk.key}"}
    for path in (
        "/v1/conversations/nope",
        "/v1/customers/nope",
        "/v1/agents/nope/feed",
        "/v1/agents/agent-ada/feed",
    ):  # agent-ada belongs to the demo tenant, not this one
        assert_problem(await http.get(path, headers=auth), 404)


async def test_an_app_key_cannot_read_conversations(http: httpx.AsyncClient, desk: Desk) -> None:
    from datetime import UTC, datetime

    from services.router.adapters.db.api_keys import generate_key, store_key

    app_key = generate_key()
    await store_key(desk.router.db, desk.tenant, app_key, "app", "mobile app", datetime.now(UTC))
    auth = {"Authorization": f"Bearer {app_key}"}
    assert (await http.post("/v1/messages", json=VALID, headers=auth)).status_code == 202
    assert_problem(await http.get("/v1/conversations/x", headers=auth), 403)
