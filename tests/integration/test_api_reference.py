"""The API reference a developer meets: an OpenAPI whose every operation is described and whose bearer auth is
declared (the Authorize button), /docs and /redoc that load nothing from another host, and one problem catalogue
whose every ``type`` resolves to a page explaining it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.router.bootstrap import build_router
from services.router.domain.errors import PROBLEMS
from services.router.entrypoints.http.app import create_app
from shared import problems
from shared.bus_memory import MemoryBus
from tests.support.runtime import Desk, asgi_client, embedded_desk, settings_for, started_desk

ROOT = Path(__file__).resolve().parents[2]
TYPE = re.compile(r"^/problems/[a-z]+(-[a-z]+)*$")  # a stable slug, never a status number


desk = embedded_desk  # the default limits


@pytest.fixture
async def http(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(create_app(desk.router, manage_lifecycle=False)) as client:
        yield client


def operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in spec["paths"].items() for method, op in ops.items()]


async def test_every_operation_has_a_summary_and_a_description_and_bearer_auth_is_declared(
    http: httpx.AsyncClient,
) -> None:
    spec = (await http.get("/openapi.json")).json()
    ops = operations(spec)
    assert len(ops) > 40
    assert [name for name, op in ops if not op.get("summary") or not op.get("description")] == []
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and scheme["description"]
    # every operation that authenticates says so, so Swagger UI sends the key given to Authorize
    authenticated = [(name, op) for name, op in ops if op.get("x-roles")]
    assert len(authenticated) > 40
    assert [name for name, op in authenticated if {"bearerAuth": []} not in op.get("security", [])] == []
    # the credentials are declared once, as the scheme, not as a header parameter of each operation
    headers = {p["name"].lower() for _, op in ops for p in op.get("parameters", []) if p["in"] == "header"}
    assert "authorization" not in headers
    message = spec["paths"]["/v1/messages"]["post"]
    assert "202" in message["responses"] and "conversation" in message["description"]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_api_reference_pages_load_every_script_and_style_from_the_service_itself(
    http: httpx.AsyncClient, page: str
) -> None:
    r = await http.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    scripts = re.findall(r"<script[^>]*\bsrc=[\"']([^\"']+)", html)
    links = re.findall(r"<link[^>]*\bhref=[\"']([^\"']+)", html)
    assert scripts, "the page loads its renderer from a script file"
    external = [url for url in scripts + links if re.match(r"^(https?:)?//", url)]
    assert external == []
    assert "cdn." not in html and "fonts.googleapis" not in html
    for url in scripts + links:
        asset = await http.get(url)
        assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert "/openapi.json" in html


async def test_every_problem_the_api_answers_has_a_type_that_resolves(desk: Desk, http: httpx.AsyncClient) -> None:
    admin = {"Authorization": f"Bearer {desk.key}"}
    agent_key = (
        await http.post("/v1/api-keys", json={"name": "t", "role": "agent", "agent_id": desk.agent()}, headers=admin)
    ).json()["key"]
    answers = {
        "401 no credentials": await http.get("/v1/queues"),
        "403 role": await http.get("/v1/api-keys", headers={"Authorization": f"Bearer {agent_key}"}),
        "404 path": await http.get("/v1/nothing-here", headers=admin),
        "404 id": await http.get("/v1/conversations/no-such-conversation", headers=admin),
        "405 method": await http.delete("/v1/messages", headers=admin),
        "409 state": await http.post(
            "/v1/conversations/c/transfer", json={"agent_id": "a", "queue_id": "q"}, headers=admin
        ),
        "413 body": await http.post("/v1/messages", content=b"x" * 70_000, headers=admin),
        "422 schema": await http.post("/v1/messages", json={"text": "no customer"}, headers=admin),
        "422 character": await http.post("/v1/queues", json={"name": "a\u0000b"}, headers=admin),
        "422 identity": await http.get("/v1/customers", params={"identifier": "not-a-phone"}, headers=admin),
    }
    for why, r in answers.items():
        assert r.status_code == int(why[:3]), (why, r.text)
        assert r.headers["content-type"] == "application/problem+json", why
        body = r.json()
        assert TYPE.match(body["type"]), (why, body["type"])
        page = await http.get(body["type"])
        assert page.status_code == 200, (why, body["type"])
        assert page.json()["type"] == body["type"] and page.json()["status"] in (body["status"], None), why
        assert page.json()["description"], why
    assert answers["404 path"].json()["type"] == answers["404 id"].json()["type"] == "/problems/not-found"
    assert answers["401 no credentials"].json()["type"] == "/problems/unauthorized"
    assert answers["413 body"].json()["type"] == "/problems/too-large"


async def test_rate_limited_and_not_ready_answers_resolve_too(tmp_path: Path) -> None:
    settings = settings_for("embedded", tmp_path, rate_limit_per_s=0.1, rate_limit_burst=1)
    async with started_desk(settings) as d, asgi_client(create_app(d.router, manage_lifecycle=False)) as client:
        auth = {"Authorization": f"Bearer {d.key}"}
        limited = [await client.get("/v1/queues", headers=auth) for _ in range(3)][-1]
        assert limited.status_code == 429 and limited.json()["type"] == "/problems/rate-limited"
        assert (await client.get(limited.json()["type"])).status_code == 200
    # a router that has not started answers readiness with its own type
    unstarted = create_app(build_router(settings, bus=MemoryBus()), manage_lifecycle=False)
    async with asgi_client(unstarted) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["type"] == "/problems/not-ready"
        assert (await client.get("/problems/not-ready")).status_code == 200


async def test_every_type_the_code_can_name_is_in_the_catalogue_and_resolves(http: httpx.AsyncClient) -> None:
    """What no request above reaches (a bus or database outage, a routing owner that does not answer) is still
    in the catalogue: the domain's problem table, the shared one, every slug a ``problem(...)`` call names in
    the source, and the type of every HTTP error status."""
    listed = (await http.get("/problems")).json()["items"]
    catalogue = {item["type"] for item in listed}
    named = {slug for _, slug, _ in [*PROBLEMS.values(), *problems.BASE_TABLE.values()]}
    for source in [*ROOT.glob("services/**/*.py"), *ROOT.glob("shared/**/*.py")]:
        named |= set(re.findall(r"\bslug=\"([^\"]+)\"", source.read_text()))
    emitted = {f"/problems/{slug}" for slug in named}
    emitted |= {json.loads(bytes(problems.problem(status, "x").body))["type"] for status in range(400, 600)}
    assert emitted - catalogue == set()
    assert all(TYPE.match(t) for t in catalogue)
    for item in listed:
        page = await http.get(item["type"])
        assert page.status_code == 200 and page.json() == item


async def test_a_problem_page_explains_itself_to_a_browser_and_an_unknown_type_is_not_found(
    http: httpx.AsyncClient,
) -> None:
    page = await http.get("/problems/validation", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Validation failed</h1>" in page.text and "loc" in page.text
    index = await http.get("/problems", headers={"Accept": "text/html"})
    assert 'href="/problems/too-large"' in index.text
    unknown = await http.get("/problems/no-such-problem")
    assert unknown.status_code == 404 and unknown.json()["type"] == "/problems/not-found"


async def test_a_text_of_20001_characters_answers_422_naming_the_text(desk: Desk, http: httpx.AsyncClient) -> None:
    """As the README states for POST /v1/messages: a text over SWITCHBOARD_MAX_TEXT_CHARS (20,000) is a 422 with
    the field named; 413 is for a body over SWITCHBOARD_MAX_BODY_BYTES."""
    assert desk.router.settings.max_text_chars == 20_000
    body = {"customer": {"external_id": "u-long"}, "text": "y" * 20_001}
    r = await http.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {desk.key}"})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["type"] == "/problems/validation" and problem["detail"].startswith("body.text: ")
    assert problem["errors"] == [
        {"loc": ["body", "text"], "msg": "String should have at most 20000 characters", "type": "string_too_long"}
    ]
    body["text"] = "y" * 20_000
    accepted = await http.post("/v1/messages", json=body, headers={"Authorization": f"Bearer {desk.key}"})
    assert accepted.status_code == 202, accepted.text


async def test_a_form_body_is_told_to_send_json(desk: Desk, http: httpx.AsyncClient) -> None:
    """curl -d without a Content-Type sends a form: the answer says what to send instead."""
    r = await http.post(
        "/v1/messages",
        content=b'{"customer": {"external_id": "u-1"}, "text": "hi"}',
        headers={"Authorization": f"Bearer {desk.key}", "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422
    assert "Content-Type: application/json" in r.json()["detail"]
