"""Who may call what, for every operation the router publishes, written out by hand from docs/api.md and
docs/security.md and from what each role is on a support desk, never read from the app (not from its `require`
dependency, not from the `x-roles` it writes into the OpenAPI):

- `app`: the customer's side, a website or mobile app backend: it posts customers' messages and callback
  requests, and reads nothing of the desk.
- `agent`: works the conversations given to them (reply, transfer, resolve, their customer's profile), their own
  presence, offers and feed, and may look at the desk's agents, queues, profiles and queue stats; configures
  nothing, finds no customer by identifier, merges nothing, sees no other agent's performance.
- `supervisor`: runs the desk: queues, agents, profiles, customers and merges, stats and SLA views,
  simulations, outgoing webhook deliveries; acts for an agent when needed.
- `admin`: everything a supervisor does, plus keys, the audit log, dead letters, export and erasure, and may
  post messages as the app does (for back-office imports).

Public routes (health, a survey's token, a chat visitor's token, an app user's ``user_hash``) take no API key:
any role's key neither opens nor closes them. The set of operations here must be the set the OpenAPI publishes,
so a route added without a line here fails."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from services.router.adapters.db.api_keys import generate_key, store_key
from tests.support.runtime import Desk, conversation_of, desk_on, inbound, publish, serving, wait_for

A, S, G, P = "admin", "supervisor", "agent", "app"
EVERY_ROLE = (P, G, S, A)
PUBLIC = "public"  # no API key involved: the answer is the same with any role's key as with none

# Each operation once, written "METHOD /path", under the roles it admits.
ADMITTED: list[tuple[set[str] | str, tuple[str, ...]]] = [
    (
        PUBLIC,
        ("GET /healthz", "GET /readyz", "POST /v1/surveys/{token}", "GET /v1/chat/wait", "GET /v1/in-app/messages"),
    ),
    # the customer's side
    ({P, A}, ("POST /v1/messages", "POST /v1/callbacks")),
    # working a conversation
    (
        {G, S, A},
        (
            "GET /v1/conversations/{conversation_id}",
            "POST /v1/conversations/{conversation_id}/reply",
            "POST /v1/conversations/{conversation_id}/transfer",
            "POST /v1/conversations/{conversation_id}/resolve",
        ),
    ),
    # an agent's own work (agents: themselves only, see SELF below)
    (
        {G, S, A},
        (
            "PUT /v1/agents/{agent_id}/presence",
            "GET /v1/agents/{agent_id}/feed",
            "POST /v1/agents/{agent_id}/accept",
            "POST /v1/agents/{agent_id}/decline",
            "POST /v1/agents/{agent_id}/claim",
            "GET /v1/desk/agents/{agent_id}/conversations",
            "GET /v1/desk/queues/{queue_id}/waiting",
        ),
    ),
    # the desk's set-up: everyone on staff reads it, supervisors change it
    ({G, S, A}, ("GET /v1/agents", "GET /v1/agents/{agent_id}")),
    ({S, A}, ("POST /v1/agents", "PATCH /v1/agents/{agent_id}", "DELETE /v1/agents/{agent_id}")),
    ({G, S, A}, ("GET /v1/queues", "GET /v1/queues/{queue_id}", "GET /v1/queues/{queue_id}/waiting")),
    ({S, A}, ("POST /v1/queues", "PATCH /v1/queues/{queue_id}", "DELETE /v1/queues/{queue_id}")),
    ({G, S, A}, ("GET /v1/profiles", "GET /v1/profiles/{profile_id}")),
    ({S, A}, ("POST /v1/profiles", "PATCH /v1/profiles/{profile_id}")),
    # customers: agents their own conversations' customers; finding by identifier and merging is supervision
    (
        {G, S, A},
        (
            "GET /v1/customers/{customer_id}",
            "PATCH /v1/customers/{customer_id}",
            "GET /v1/customers/{customer_id}/timeline",
        ),
    ),
    (
        {S, A},
        (
            "GET /v1/customers",
            "POST /v1/customers/{customer_id}/merge",
            "POST /v1/customers/{customer_id}/unmerge",
            "GET /v1/desk/suggestions",
        ),
    ),
    # GDPR: the data controller's acts
    ({A}, ("GET /v1/customers/{customer_id}/export", "DELETE /v1/customers/{customer_id}")),
    # watching the desk
    ({G, S, A}, ("GET /v1/stats/queues",)),
    (
        {S, A},
        (
            "GET /v1/stats/agents",
            "GET /v1/stats/kpis",
            "GET /v1/supervisors/feed",
            "GET /v1/desk/sla",
            "POST /v1/simulations",
            "GET /v1/simulations/{simulation_id}",
            "GET /v1/webhook-deliveries",
            "POST /v1/webhook-deliveries/{delivery_id}/redeliver",
        ),
    ),
    # the tenant's security and operations
    (
        {A},
        (
            "GET /v1/api-keys",
            "POST /v1/api-keys",
            "DELETE /v1/api-keys/{key_id}",
            "POST /v1/api-keys/{key_id}/rotate",
            "GET /v1/audit",
            "GET /v1/deadletters",
            "GET /v1/deadletters/{deadletter_id}",
            "POST /v1/deadletters/{deadletter_id}/redrive",
        ),
    ),
]


def operation(line: str) -> tuple[str, str]:
    method, path = line.split(" ")
    return method, path


MATRIX: dict[tuple[str, str], set[str] | str] = {operation(op): roles for roles, ops in ADMITTED for op in ops}
assert len(MATRIX) == sum(len(ops) for _, ops in ADMITTED), "an operation is listed twice"

# "agent (self)" in docs/api.md: an agent acts and reads there only as the agent the path names.
SELF = {
    ("PUT", "/v1/agents/{agent_id}/presence"),
    ("GET", "/v1/agents/{agent_id}/feed"),
    ("POST", "/v1/agents/{agent_id}/accept"),
    ("POST", "/v1/agents/{agent_id}/decline"),
    ("POST", "/v1/agents/{agent_id}/claim"),
    ("GET", "/v1/desk/agents/{agent_id}/conversations"),
}

NOWHERE = "00000000-0000-4000-8000-000000000000"  # an id no tenant has


@dataclass
class Desk2:
    desk: Desk
    base: str
    http: httpx.AsyncClient
    keys: dict[str, str]  # role → key; the agent's is Ada's, "grace" another agent's
    ids: dict[str, str]  # path parameter → id


@pytest.fixture(params=["embedded", "production"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Desk2]:
    async with desk_on(request, tmp_path) as desk, serving(desk.router) as base:
        now = datetime.now(UTC)
        keys = {A: desk.key}
        for role in (P, S):
            keys[role] = generate_key()
            await store_key(desk.router.db, desk.tenant, keys[role], role, role, now)
        keys[G] = generate_key()
        await store_key(desk.router.db, desk.tenant, keys[G], "agent", "ada", now, desk.agent("agent-ada"))
        keys["grace"] = generate_key()
        await store_key(desk.router.db, desk.tenant, keys["grace"], "agent", "grace", now, desk.agent("agent-grace"))
        spare = await store_key(desk.router.db, desk.tenant, generate_key(), "app", "spare", now)
        event = inbound(desk.tenant, "role-matrix-customer", "my order is late")
        await publish(desk, event)
        conv = await wait_for(lambda: conversation_of(desk, event.id))
        assert conv["agent_id"] == desk.agent("agent-ada"), "the seeded desk gives Ada the first conversation"
        ids = {
            "conversation_id": conv["id"],
            "customer_id": conv["customer_id"],
            "agent_id": desk.agent("agent-ada"),
            "queue_id": f"{desk.tenant}-q-messaging",
            "profile_id": NOWHERE,
            "deadletter_id": NOWHERE,
            "delivery_id": NOWHERE,
            "simulation_id": NOWHERE,
            "key_id": spare,
            "token": "no-such-survey-token",
        }
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Desk2(desk, base, http, keys, ids)


# Calls that would remove what the other calls need (the agent, her queue, the customer) name no one instead:
# the role check comes first, so an admitted role gets 404 and another 403 all the same.
DESTRUCTIVE = {
    ("DELETE", "/v1/agents/{agent_id}"),
    ("DELETE", "/v1/queues/{queue_id}"),
    ("DELETE", "/v1/customers/{customer_id}"),
}


def url(w: Desk2, method: str, path: str) -> str:
    for name, value in w.ids.items():
        value = NOWHERE if (method, path) in DESTRUCTIVE else value
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no id for {path}"
    return path


async def status_of(w: Desk2, method: str, path: str, key: str | None, body: Any = None) -> int:
    """The status of one call as the caller of ``key``; a stream is left as soon as its status came. Without
    ``body``, writes send an empty one: the role check comes before the body's."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is None and method in ("POST", "PUT", "PATCH"):
        body = {}
    async with w.http.stream(method, url(w, method, path), json=body, headers=headers) as r:
        return r.status_code


def published(schema: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}


async def test_the_matrix_covers_exactly_the_operations_the_api_publishes(world: Desk2) -> None:
    r = await world.http.get("/openapi.json")
    assert r.status_code == 200
    ops = published(r.json())
    assert ops - set(MATRIX) == set(), "operations without a line in the matrix"
    assert set(MATRIX) - ops == set(), "matrix lines for operations the API no longer has"


async def test_each_role_is_admitted_exactly_where_the_matrix_says(world: Desk2) -> None:
    wrong: list[str] = []
    for (method, path), allowed in MATRIX.items():
        if allowed == PUBLIC:
            anonymous = await status_of(world, method, path, None)
            for role in EVERY_ROLE:
                got = await status_of(world, method, path, world.keys[role])
                if got != anonymous:
                    wrong.append(f"{role} {method} {path}: {got}, anonymously {anonymous}")
            if path in ("/healthz", "/readyz") and anonymous != 200:
                wrong.append(f"anonymous {method} {path}: {anonymous}")
            continue
        for role in EVERY_ROLE:
            got = await status_of(world, method, path, world.keys[role])
            if role in allowed and got in (401, 403):
                wrong.append(f"{role} {method} {path}: refused with {got}, the matrix admits it")
            elif role not in allowed and got != 403:
                wrong.append(f"{role} {method} {path}: {got}, the matrix refuses it (403)")
    assert wrong == [], "\n".join(wrong)


async def test_an_agent_acts_only_as_themselves_but_may_look_up_colleagues(world: Desk2) -> None:
    """With well-formed bodies, so that the check of who acts is what answers, not the body's validation."""
    bodies = {
        "presence": {"presence": "online"},
        **{c: {"conversation_id": world.ids["conversation_id"]} for c in ("accept", "decline", "claim")},
    }
    wrong: list[str] = []
    for method, path in sorted(SELF):
        body = bodies.get(path.rsplit("/", 1)[1])
        got = await status_of(world, method, path, world.keys["grace"], body)  # the paths name Ada
        if got != 403:
            wrong.append(f"grace {method} {path} as Ada: {got}")
        own = await status_of(world, method, path, world.keys[G], body)
        if own in (401, 403):
            wrong.append(f"ada {method} {path} as herself: {own}")
    colleague = await status_of(world, "GET", "/v1/agents/{agent_id}", world.keys["grace"])
    assert colleague == 200, "the desk's agents are visible to every agent (a transfer needs them)"
    assert wrong == [], "\n".join(wrong)


async def test_the_agent_feed_websocket_admits_the_same_roles_as_its_sse_twin(world: Desk2) -> None:
    """`WS /v1/agents/{id}/feed/ws` is not in the OpenAPI: its line is here. Admitted: the first frame replays
    Ada's assignment; refused: closed with 4403."""
    ws_base = world.base.replace("http://", "ws://") + f"/v1/agents/{world.ids['agent_id']}/feed/ws"
    allowed = MATRIX[("GET", "/v1/agents/{agent_id}/feed")]
    assert isinstance(allowed, set)
    for who, key in [*((role, world.keys[role]) for role in EVERY_ROLE), ("grace", world.keys["grace"])]:
        if who in allowed:
            async with websockets.connect(f"{ws_base}?access_token={key}") as ws:
                frame = json.loads(await ws.recv())
            assert frame["event"] == "assignment", (who, frame)
        else:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with websockets.connect(f"{ws_base}?access_token={key}") as ws:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403, who
