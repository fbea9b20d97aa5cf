"""Staff input carrying U+0000 or a lone surrogate (which PostgreSQL text cannot hold) is refused with 422 naming
the field, on both shapes, and nothing is written; the same request without it succeeds. Customers' messages
are not refused (their route cleans them)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.events import Channel, IdentityKind
from tests.conftest import random_name
from tests.support.runtime import Desk, admin_client, arrive, desk_on, inbound

NUL, SURROGATE = "\x00", "\ud800"
BAD = pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
# the same characters percent-encoded in a URL: NUL, and U+D800 as (CESU-8) UTF-8 bytes
ENCODED = pytest.mark.parametrize("bad", ["%00", "%ED%A0%80"], ids=["nul", "surrogate"])


@pytest.fixture(scope="module", params=["embedded", "production"])
async def desk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Desk]:
    async with desk_on(request, tmp_path_factory.mktemp("guard")) as d:
        yield d


@pytest.fixture(scope="module")
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    async with admin_client(desk) as client:
        yield client


async def send(api: httpx.AsyncClient, method: str, url: str, document: Any) -> httpx.Response:
    """JSON as a client sends it: json.dumps escapes NUL and lone surrogates (\\u0000, \\ud800)."""
    return await api.request(method, url, content=json.dumps(document), headers={"Content-Type": "application/json"})


def refused(response: httpx.Response, loc: list[str | int], field: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "/problems/validation" and problem["detail"].startswith(f"{field} contains ")
    assert [e["loc"] for e in problem["errors"]] == [loc]


async def conversation(desk: Desk) -> dict[str, Any]:
    """A fresh customer's conversation, on a channel replies go out on."""
    event = inbound(desk.tenant, random_name(""), "hello", channel=Channel.TELEGRAM, kind=IdentityKind.TELEGRAM_ID)
    return await arrive(desk, event)


@BAD
async def test_a_profile_edit_with_a_bad_character_is_refused_naming_the_field_and_changes_nothing(
    desk: Desk, api: httpx.AsyncClient, bad: str
) -> None:
    customer_id = (await conversation(desk))["customer_id"]
    url = f"/v1/customers/{customer_id}"
    before = (await api.get(url)).json()

    refused(await send(api, "PATCH", url, {"name": f"Sam{bad}"}), ["body", "name"], "body.name")
    refused(await send(api, "PATCH", url, {"tags": ["vip", f"b{bad}"]}), ["body", "tags", 1], "body.tags[1]")
    shown = f"k\\u{ord(bad):04x}"  # the key as the answer names it
    refused(
        await send(api, "PATCH", url, {"attributes": {f"k{bad}": "v"}}),
        ["body", "attributes", shown],
        f"body.attributes.{shown}",
    )
    assert (await api.get(url)).json() == before

    done = await send(api, "PATCH", url, {"name": "Sam", "tags": ["vip"], "attributes": {"k": "v"}})
    assert done.status_code == 200, done.text
    assert (done.json()["name"], done.json()["tags"]) == ("Sam", ["vip"])


@BAD
async def test_an_agent_reply_with_a_bad_character_is_refused_and_nothing_is_sent(
    desk: Desk, api: httpx.AsyncClient, bad: str
) -> None:
    url = f"/v1/conversations/{(await conversation(desk))['id']}"

    refused(await send(api, "POST", f"{url}/reply", {"text": f"On it{bad}"}), ["body", "text"], "body.text")
    assert [m["direction"] for m in (await api.get(url)).json()["messages"] if m["author"] != "system"] == ["inbound"]

    sent = await send(api, "POST", f"{url}/reply", {"text": "On it"})
    assert sent.status_code == 202, sent.text
    assert [m["direction"] for m in (await api.get(url)).json()["messages"] if m["author"] != "system"] == [
        "inbound",
        "outbound",
    ]


@BAD
async def test_queue_and_agent_configuration_with_a_bad_character_is_refused_and_nothing_is_created(
    desk: Desk, api: httpx.AsyncClient, bad: str
) -> None:
    name = random_name("Billing ")
    refused(await send(api, "POST", "/v1/queues", {"name": f"{name}{bad}"}), ["body", "name"], "body.name")
    refused(await send(api, "POST", "/v1/agents", {"name": f"{name}{bad}"}), ["body", "name"], "body.name")
    rule = {"all": [{"attr": "tags", "has": f"billing{bad}"}]}
    loc: list[str | int] = ["body", "routing", "rule", "all", 0, "has"]
    refused(
        await send(api, "POST", "/v1/queues", {"name": name, "routing": {"rule": rule}}),
        loc,
        "body.routing.rule.all[0].has",
    )
    assert name not in {q["name"] for q in (await api.get("/v1/queues")).json()}
    assert name not in {a["name"] for a in (await api.get("/v1/agents")).json()}

    rule = {"all": [{"attr": "tags", "has": "billing"}]}
    queue = await send(api, "POST", "/v1/queues", {"name": name, "routing": {"rule": rule}})
    assert queue.status_code == 201, queue.text
    agent = await send(api, "POST", "/v1/agents", {"name": name, "queue_ids": [queue.json()["id"]]})
    assert agent.status_code == 201, agent.text
    renamed = await send(api, "PATCH", f"/v1/queues/{queue.json()['id']}", {"name": f"{name}{bad}"})
    refused(renamed, ["body", "name"], "body.name")
    assert (await api.get(f"/v1/queues/{queue.json()['id']}")).json()["name"] == name


@ENCODED
async def test_a_search_with_a_bad_character_in_the_query_is_refused_naming_the_parameter(
    api: httpx.AsyncClient, bad: str
) -> None:
    refused(
        await api.get(f"/v1/customers?identifier=x{bad}%40example.com"),
        ["query", "identifier"],
        "query parameter 'identifier'",
    )
    found = await api.get("/v1/customers?identifier=x%40example.com")
    assert found.status_code == 200 and found.json()["items"] == []


@ENCODED
async def test_an_id_with_a_bad_character_in_the_path_is_refused(desk: Desk, api: httpx.AsyncClient, bad: str) -> None:
    conv = await conversation(desk)
    refused(await api.get(f"/v1/customers/{conv['customer_id']}{bad}"), ["path"], "path")
    refused(await api.get(f"/v1/conversations/{bad}{conv['id']}"), ["path"], "path")
    refused(await send(api, "PATCH", f"/v1/customers/x{bad}", {"name": "Sam"}), ["path"], "path")
    refused(await send(api, "POST", f"/v1/conversations/{conv['id']}{bad}/reply", {"text": "hi"}), ["path"], "path")
    assert (await api.get(f"/v1/customers/{conv['customer_id']}")).status_code == 200
    shown = (await api.get(f"/v1/conversations/{conv['id']}")).json()["messages"]
    assert [m for m in shown if m["author"] != "system"][-1]["direction"] == "inbound"  # not the acknowledgement
    assert (await api.get("/v1/customers/x")).status_code == 404


@BAD
async def test_a_customers_message_body_is_left_to_its_route_but_its_query_is_checked(
    api: httpx.AsyncClient, bad: str
) -> None:
    message = {"customer": {"external_id": random_name("u-")}, "text": f"hi{bad}"}
    posted = await send(api, "POST", "/v1/messages", message)
    assert "invalid_character" not in posted.text, "the route cleans customers' content, the guard does not refuse it"
    if bad == NUL:
        assert posted.status_code == 202, posted.text
    refused(await send(api, "POST", "/v1/messages?src=a%00", message), ["query", "src"], "query parameter 'src'")
