"""``POST /v1/messages`` answered ahead of the framework (services/router/entrypoints/http/fast_ingest.py) answers
every request exactly as its FastAPI route does, and publishes the same event: the same requests, good and bad,
go to an app with the fast path and to one without it (the route alone), on the same desk, and their status,
headers, bodies, events and HTTP metric (method, route template, status) are compared. The plainly valid ones
must have been answered by the fast path."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from services.router.adapters.db.api_keys import generate_key, store_key
from services.router.entrypoints.http.app import create_app
from services.router.entrypoints.http.fast_ingest import FastIngest
from shared.bus_memory import MemoryBus
from shared.events import decode_event
from tests.support.runtime import Desk, asgi_client, settings_for, started_desk

SECRET = "identity-secret"
MAX_TEXT = 500
COMPARED_HEADERS = ("content-type", "www-authenticate", "retry-after", "allow", "location")


def user_hash(external_id: str) -> str:
    return hmac.new(SECRET.encode(), external_id.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    settings = settings_for(
        "embedded", tmp_path, max_body_bytes=4096, max_text_chars=MAX_TEXT, inapp_identity_secret=SECRET
    )
    async with started_desk(settings) as d:
        yield d


async def key_of(desk: Desk, role: str) -> str:
    key = generate_key()
    await store_key(desk.router.db, desk.tenant, key, role, f"{role} key", datetime.now(UTC))
    return key


def fast_path_of(app: Any) -> FastIngest:
    layer = app.middleware_stack
    while layer is not None and not isinstance(layer, FastIngest):
        layer = getattr(layer, "app", None)
    assert isinstance(layer, FastIngest), "the app has the fast path"
    return layer


def answer(r: httpx.Response) -> tuple[int, dict[str, str], Any]:
    headers = {h: r.headers[h] for h in COMPARED_HEADERS if h in r.headers}
    try:
        body: Any = r.json()
    except ValueError:
        body = r.text
    if isinstance(body, dict) and r.status_code == 202:
        body = {**body, "event_id": "…"}  # a message without an idempotency key gets a new event id each time
    return r.status_code, headers, body


def published(desk: Desk) -> list[dict[str, Any]]:
    """The events on the bus, without what differs between two acceptances of one message (id, times)."""
    assert isinstance(desk.bus, MemoryBus)
    return [
        decode_event(r.value).model_dump(mode="json", exclude={"id", "time", "received_at"})
        for r in desk.bus.records(desk.router.topics.events)
    ]


def timings() -> Counter[tuple[str, ...]]:
    """How many requests the HTTP metric has timed, by its labels (method, route, status)."""
    counts: Counter[tuple[str, ...]] = Counter()
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == "switchboard_http_request_duration_seconds_count":
                counts[tuple(sample.labels[k] for k in ("method", "route", "status"))] = int(sample.value)
    return counts


def grown(before: Counter[tuple[str, ...]], after: Counter[tuple[str, ...]]) -> dict[tuple[str, ...], int]:
    return {labels: n - before[labels] for labels, n in after.items() if n != before[labels]}


def cases(app_key: str, admin_key: str, agent_key: str) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """(why, path, headers, body): plainly valid requests first, then each way a request can be something else."""
    bearer = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}

    def body(value: Any) -> bytes:
        return json.dumps(value).encode()

    valid = body({"customer": {"external_id": "u-1"}, "text": "hello"})
    future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    recent = (datetime.now(UTC) - timedelta(minutes=3)).isoformat()
    full = {
        "customer": {
            "external_id": "u-2",
            "name": "Ada",
            "email": "ada@example.com",
            "phone": "+442071838750",
            "tier": "gold",
            "language": "en",
            "attributes": {"plan": "pro"},
            "owner_agent_id": "agent-ada",
            "user_hash": user_hash("u-2"),
        },
        "text": "where is my order?",
        "idempotency_key": "order-1",
        "sent_at": recent,
    }
    return [
        ("minimal", "/v1/messages", bearer, valid),
        ("every field, vouched for", "/v1/messages", bearer, body(full)),
        ("an app's key", "/v1/messages", {**bearer, "Authorization": f"Bearer {app_key}"}, valid),
        ("an idempotency key header", "/v1/messages", {**bearer, "Idempotency-Key": "k-1"}, valid),
        ("header and body keys", "/v1/messages", {**bearer, "Idempotency-Key": "k-2"}, body(full)),
        ("lowercase scheme, spaces", "/v1/messages", {**bearer, "Authorization": f"bearer   {admin_key} "}, valid),
        ("charset", "/v1/messages", {**bearer, "Content-Type": "application/json; charset=utf-8"}, valid),
        (
            "NUL in the text, cleaned",
            "/v1/messages",
            bearer,
            body({"customer": {"external_id": "u-3"}, "text": "a\x00b"}),
        ),
        (
            "unvouched tier",
            "/v1/messages",
            bearer,
            body({"customer": {"external_id": "u-4", "tier": "gold"}, "text": "x"}),
        ),
        # valid, refused while it is accepted: the app's own handler words the problem
        (
            "wrong user_hash",
            "/v1/messages",
            bearer,
            body({**full, "customer": {**full["customer"], "user_hash": "ab"}}),
        ),
        # refused, or left to the route
        ("no credentials", "/v1/messages", {"Content-Type": "application/json"}, valid),
        ("basic scheme", "/v1/messages", {**bearer, "Authorization": "Basic dXNlcjpwYXNz"}, valid),
        ("empty bearer", "/v1/messages", {**bearer, "Authorization": "Bearer "}, valid),
        ("unknown key", "/v1/messages", {**bearer, "Authorization": "Bearer sb_unknown"}, valid),
        ("an agent's key", "/v1/messages", {**bearer, "Authorization": f"Bearer {agent_key}"}, valid),
        (
            "text too long",
            "/v1/messages",
            bearer,
            body({"customer": {"external_id": "u"}, "text": "x" * (MAX_TEXT + 1)}),
        ),
        ("unknown field", "/v1/messages", bearer, body({"customer": {"external_id": "u"}, "text": "x", "txt": 1})),
        ("no customer", "/v1/messages", bearer, body({"text": "x"})),
        ("text a number", "/v1/messages", bearer, body({"customer": {"external_id": "u"}, "text": 5})),
        ("NUL in an id", "/v1/messages", bearer, body({"customer": {"external_id": "u\x00"}, "text": "x"})),
        ("lone surrogate", "/v1/messages", bearer, b'{"customer": {"external_id": "u"}, "text": "a\\ud800b"}'),
        ("bad email", "/v1/messages", bearer, body({"customer": {"external_id": "u", "email": "no"}, "text": "x"})),
        (
            "sent in days",
            "/v1/messages",
            bearer,
            body({"customer": {"external_id": "u"}, "text": "x", "sent_at": future}),
        ),
        ("malformed JSON", "/v1/messages", bearer, b'{"customer": '),
        ("empty body", "/v1/messages", bearer, b""),
        ("a JSON array", "/v1/messages", bearer, b"[]"),
        ("too big", "/v1/messages", bearer, body({"customer": {"external_id": "u"}, "text": "x" * 5000})),
        ("too big, valid", "/v1/messages", bearer, valid + b" " * 4096),  # the body limit's, not the text's
        ("a query string", "/v1/messages?source=app", bearer, valid),
        ("NUL in the query", "/v1/messages?source=%00", bearer, valid),  # the text guard's
        ("text/plain", "/v1/messages", {**bearer, "Content-Type": "text/plain"}, valid),
        ("no content type", "/v1/messages", {"Authorization": f"Bearer {admin_key}"}, valid),
        ("+json", "/v1/messages", {**bearer, "Content-Type": "application/vnd.api+json"}, valid),
        ("a long idempotency key", "/v1/messages", {**bearer, "Idempotency-Key": "k" * 257}, valid),
        ("trailing slash", "/v1/messages/", bearer, valid),
        ("GET", "/v1/messages", bearer, None),
    ]


FAST = 10  # the first cases: plainly valid, so answered by the fast path (the last one refused by it)


async def test_the_fast_path_answers_as_the_route_does_and_publishes_the_same_events(desk: Desk) -> None:
    app_key, agent_key = await key_of(desk, "app"), await key_of(desk, "agent")
    fast_app = create_app(desk.router, manage_lifecycle=False)
    route_app = create_app(desk.router, manage_lifecycle=False, fast_ingest=False)
    async with asgi_client(fast_app) as fast, asgi_client(route_app) as route:
        for why, path, headers, content in cases(app_key, desk.key, agent_key):
            if content is None:
                assert answer(await fast.get(path, headers=headers)) == answer(await route.get(path, headers=headers))
                continue
            before, timed = len(published(desk)), timings()
            by_route = await route.post(path, content=content, headers=headers)
            between, timed_route = len(published(desk)), timings()
            by_fast = await fast.post(path, content=content, headers=headers)
            assert answer(by_fast) == answer(by_route), why
            assert grown(timed_route, timings()) == grown(timed, timed_route), f"{why}: timed alike"
            events = published(desk)
            assert events[between:] == events[before:between], why
        assert fast_path_of(fast_app).served == FAST


async def test_a_key_over_its_rate_limit_is_refused_alike(tmp_path: Path) -> None:
    settings = settings_for("embedded", tmp_path, rate_limit_per_s=0.01, rate_limit_burst=3)
    async with started_desk(settings) as desk:
        other = await key_of(desk, "admin")
        fast_app = create_app(desk.router, manage_lifecycle=False)
        route_app = create_app(desk.router, manage_lifecycle=False, fast_ingest=False)
        body = {"customer": {"external_id": "u-1"}, "text": "hello"}
        async with asgi_client(fast_app) as fast, asgi_client(route_app) as route:
            by_fast = [await fast.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {desk.key}"})]
            by_route = [await route.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {other}"})]
            for _ in range(4):
                by_fast.append(
                    await fast.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {desk.key}"})
                )
                by_route.append(
                    await route.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {other}"})
                )
        assert [r.status_code for r in by_fast] == [202, 202, 202, 429, 429]
        assert [answer(r) for r in by_fast] == [answer(r) for r in by_route]
        assert fast_path_of(fast_app).served == 3
