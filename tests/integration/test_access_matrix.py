"""Authorization over every route the router publishes in its OpenAPI (``x-roles`` on each operation):
without credentials → 401; with another tenant's credentials → 404 (or 403), and nothing of this tenant in
any answer; with a role the route does not admit → 403; agents see only their own conversations and act only
as themselves. Plus: API keys rotated and revoked, JWT bearer tokens (HS256, RS256 from a JWKS), the audit log.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from cryptography.hazmat.primitives.asymmetric import rsa

from services.router.adapters.db.api_keys import ROLES, generate_key, store_key
from services.router.adapters.db.seed import seed_demo
from services.router.adapters.views import deadletters as deadletter_views
from services.router.entrypoints.http.app import create_app
from services.router.handlers.ports.deadletters import DeadLetter
from services.router.handlers.ports.webhook_deliveries import Attempted, NewDelivery
from shared.events import encode_event
from tests.integration.test_role_matrix import MATRIX, PUBLIC
from tests.support.runtime import Desk, conversation_of, inbound, publish, serving, settings_for, started_desk, wait_for

HS_SECRET = "test-hs256-secret-of-enough-length-0123456789"
AUDIENCE = "switchboard-test"
ISSUER = "https://idp.example.test/"


@dataclass
class World:
    desk: Desk
    base: str
    http: httpx.AsyncClient
    keys: dict[str, str]  # role (and "agent-ada") → key of the desk's tenant
    other_admin: str  # admin key of another tenant
    ids: dict[str, str]  # path parameter → an id of the desk's tenant
    rsa_key: rsa.RSAPrivateKey


class _Jwks(BaseHTTPRequestHandler):
    body = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks() -> Iterator[tuple[str, rsa.RSAPrivateKey]]:
    """The identity provider's JWKS endpoint, on a local socket."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    handler = type("Jwks", (_Jwks,), {"body": json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig"}]}).encode()})
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", key
    finally:
        server.shutdown()


@pytest.fixture(params=["embedded", "production"])
async def world(request: pytest.FixtureRequest, tmp_path: Path, jwks: tuple[str, Any]) -> AsyncIterator[World]:
    servers = request.getfixturevalue("servers") if request.param == "production" else None
    settings = settings_for(
        request.param,
        tmp_path,
        servers,
        jwt_secret=HS_SECRET,
        jwt_jwks_url=jwks[0],
        jwt_audience=AUDIENCE,
        jwt_issuer=ISSUER,
    )
    async with started_desk(settings) as desk, serving(desk.router) as base:
        now = datetime.now(UTC)
        keys = {"admin": desk.key}
        for role in ("app", "supervisor"):
            keys[role] = generate_key()
            await store_key(desk.router.db, desk.tenant, keys[role], role, role, now)
        keys["agent"] = generate_key()  # Grace: holds nothing
        await store_key(desk.router.db, desk.tenant, keys["agent"], "agent", "grace", now, desk.agent("agent-grace"))
        keys["agent-ada"] = generate_key()
        await store_key(desk.router.db, desk.tenant, keys["agent-ada"], "agent", "ada", now, desk.agent("agent-ada"))
        other = f"{desk.tenant}-other"
        await seed_demo(desk.router.db, now, tenant_id=other)
        other_admin = generate_key()
        await store_key(desk.router.db, other, other_admin, "admin", "other", now)
        event = inbound(desk.tenant, "matrix-customer", "my order is late")
        await publish(desk, event)
        conv = await wait_for(lambda: conversation_of(desk, event.id))
        assert conv["agent_id"] == desk.agent("agent-ada")
        spare = generate_key()
        key_id = await store_key(desk.router.db, desk.tenant, spare, "app", "spare", now)
        letter = inbound(desk.tenant, "matrix-dead-letter", "could not be applied")
        async with desk.router.repo.unit() as u:
            await u.deadletters.add(
                [
                    DeadLetter(
                        id=str(uuid.uuid4()),
                        tenant_id=desk.tenant,
                        topic=desk.router.topics.events,
                        partition=0,
                        offset=0,
                        key=desk.tenant.encode(),
                        value=encode_event(letter),
                        reason="test",
                        kind="invalid",
                        dl_topic=f"matrix-{uuid.uuid4()}",
                        dl_partition=0,
                        dl_offset=0,
                    )
                ],
                now,
            )
            deadletter_id = (await deadletter_views.page(u.conn, desk.tenant, 1, None))[0]["id"]
        delivery = NewDelivery(
            id=str(uuid.uuid4()),
            tenant_id=desk.tenant,
            url="http://receiver.test/hook",
            event_id=str(uuid.uuid4()),
            event_type="assignment",
            conversation_id=conv["id"],
            ordering_key=f"conversation:{conv['id']}",
            body=b"{}",
        )
        async with desk.router.repo.unit() as u:
            await u.webhook_deliveries.add("matrix", [delivery], now)
            await u.webhook_deliveries.record(
                [Attempted(delivery.id, desk.tenant, "failed", 503, "gave up", None)], now
            )
        profile = await desk.router.configuration.create_profile(desk.tenant, "Matrix", {"capacity": 3})
        ids = {
            "profile_id": profile["id"],
            "deadletter_id": deadletter_id,
            "delivery_id": delivery.id,
            "conversation_id": conv["id"],
            "customer_id": conv["customer_id"],
            "agent_id": desk.agent("agent-ada"),
            "queue_id": f"{desk.tenant}-q-messaging",
            "key_id": key_id,
            "simulation_id": "f6a1c0de-0000-4000-8000-000000000000",  # none of this tenant's: 404 to everyone
        }
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield World(desk, base, http, keys, other_admin, ids, jwks[1])


def operations(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    schema = create_app(world.desk.router, manage_lifecycle=False).openapi()
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        # a survey's token, a chat visitor's token, an app user's user_hash is the credential (test_csat.py,
        # test_chat_wait.py, test_in_app_feed.py)
        if path.startswith("/v1/") and not path.startswith(("/v1/surveys/", "/v1/chat/wait", "/v1/in-app/"))
        for method, op in ops.items()
    ]


def url(world: World, path: str) -> str:
    for name, value in world.ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no id for {path}"
    return path


def streams(op: dict[str, Any]) -> bool:
    return "text/event-stream" in json.dumps(op.get("responses", {}))


QUERIES = {"/v1/customers": {"identifier": "app_user:matrix-customer"}}  # required query parameters


async def call(world: World, method: str, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {} if method in ("POST", "PUT", "PATCH") else None
    return await world.http.request(
        method, url(world, path), json=body, headers=headers, params=QUERIES.get(path) if method == "GET" else None
    )


async def test_every_route_declares_its_roles(world: World) -> None:
    ops = operations(world)
    assert len(ops) >= 35
    missing = [f"{m} {p}" for m, p, op in ops if not op.get("x-roles")]
    assert missing == []


async def test_without_credentials_every_route_answers_401(world: World) -> None:
    for method, path, _ in operations(world):
        r = await call(world, method, path, None)
        assert r.status_code == 401, f"{method} {path}: {r.status_code} {r.text}"
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "www-authenticate" in r.headers


async def test_another_tenants_credentials_find_nothing_of_this_tenant(world: World) -> None:
    secrets = {world.ids["conversation_id"], world.ids["customer_id"], "matrix-customer", "my order is late"}
    for method, path, op in operations(world):
        has_ids = "{" in path
        if not has_ids and (streams(op) or method != "GET"):
            continue  # no id to guess: a write lands in the caller's own tenant; a stream has no end to read
        r = await call(world, method, path, world.other_admin)
        if has_ids:
            assert r.status_code in (403, 404, 409, 422), f"{method} {path}: {r.status_code} {r.text}"
            if r.status_code in (409, 422):  # the empty body was refused first: the next test sends valid ones
                assert "invalid" in r.text or "missing" in r.text, r.text
                continue
        else:
            assert r.status_code == 200, f"{method} {path}: {r.status_code}"
        asked = url(world, path) + json.dumps(QUERIES.get(path))  # what the caller gave may be echoed, no more
        if path == "/v1/audit":  # the caller's own trail lists the ids it just tried
            asked += world.ids["conversation_id"] + world.ids["customer_id"]
        assert not any(s in r.text for s in secrets if s not in asked), f"{method} {path} leaked: {r.text[:300]}"


async def test_foreign_ids_answer_404_even_with_a_valid_body(world: World) -> None:
    """The 422s above: the same routes with well-formed bodies, so the tenant check is what answers."""
    bodies = {
        ("PUT", "/v1/agents/{agent_id}/presence"): {"presence": "online"},
        ("POST", "/v1/agents/{agent_id}/accept"): {"conversation_id": world.ids["conversation_id"]},
        ("POST", "/v1/agents/{agent_id}/decline"): {"conversation_id": world.ids["conversation_id"]},
        ("POST", "/v1/agents/{agent_id}/claim"): {"conversation_id": world.ids["conversation_id"]},
        ("POST", "/v1/conversations/{conversation_id}/reply"): {"text": "hi"},
        ("POST", "/v1/conversations/{conversation_id}/transfer"): {"queue_id": world.ids["queue_id"]},
        ("POST", "/v1/customers/{customer_id}/merge"): {"customer_id": "another-customer"},
        ("POST", "/v1/customers/{customer_id}/unmerge"): {"customer_id": "another-customer"},
        ("PATCH", "/v1/customers/{customer_id}"): {"name": "x"},
        ("PATCH", "/v1/queues/{queue_id}"): {"name": "x"},
        ("PATCH", "/v1/agents/{agent_id}"): {"name": "x"},
    }
    for (method, path), body in bodies.items():
        r = await world.http.request(
            method, url(world, path), json=body, headers={"Authorization": f"Bearer {world.other_admin}"}
        )
        assert r.status_code == 404, f"{method} {path}: {r.status_code} {r.text}"
    conv = await world.http.get(
        url(world, "/v1/conversations/{conversation_id}"), headers={"Authorization": f"Bearer {world.keys['admin']}"}
    )
    assert conv.json()["agent_id"] == world.ids["agent_id"], "nothing the other tenant sent changed it"


# The desk's access policy, written down by hand rather than read from the app: the role matrix of
# test_role_matrix.py, the one place it is written, less its public operations (``operations`` leaves them out).
# A route added to the app without a line there fails the test below.
POLICY = {op: roles for op, roles in MATRIX.items() if roles != PUBLIC}


async def test_each_route_admits_exactly_the_roles_the_desks_policy_names(world: World) -> None:
    """Checked by calling: a role outside the policy gets 403, a role inside it anything but 403 (the call
    itself may be refused for its empty body or a foreign id, after the role check)."""
    served = {(m, p) for m, p, _ in operations(world)}
    assert served == set(POLICY), f"routes without a policy line: {served - set(POLICY)}; gone: {set(POLICY) - served}"
    wrong = []
    for method, path, op in operations(world):
        if streams(op):
            continue  # a stream admitted never ends; its 403s are checked with the other routes below
        for role in ROLES:
            key = world.keys["agent-ada" if role == "agent" else role]  # the agent the paths name: roles only
            refused = (await call(world, method, path, key)).status_code == 403
            if refused == (role in POLICY[(method, path)]):
                wrong.append(f"{role} {method} {path}: {'refused' if refused else 'admitted'}")
    assert wrong == []


async def test_a_role_the_route_does_not_admit_gets_403(world: World) -> None:
    checked = 0
    for method, path, op in operations(world):
        for role in ROLES:
            if role in op["x-roles"]:
                continue
            r = await call(world, method, path, world.keys[role])
            assert r.status_code == 403, f"{role} {method} {path}: {r.status_code} {r.text}"
            checked += 1
    assert checked > 50


async def test_agents_see_only_their_own_conversations_and_act_only_as_themselves(world: World) -> None:
    def as_(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {world.keys[who]}"}

    conv, customer, ada = world.ids["conversation_id"], world.ids["customer_id"], world.ids["agent_id"]
    for path in (f"/v1/conversations/{conv}", f"/v1/customers/{customer}", f"/v1/customers/{customer}/timeline"):
        assert (await world.http.get(path, headers=as_("agent-ada"))).status_code == 200, path
        assert (await world.http.get(path, headers=as_("agent"))).status_code == 404, path
        assert (await world.http.get(path, headers=as_("supervisor"))).status_code == 200, path
    reply = await world.http.post(f"/v1/conversations/{conv}/reply", json={"text": "hi"}, headers=as_("agent"))
    assert reply.status_code == 404
    presence = await world.http.put(f"/v1/agents/{ada}/presence", json={"presence": "away"}, headers=as_("agent"))
    assert presence.status_code == 403
    own = await world.http.put(f"/v1/agents/{ada}/presence", json={"presence": "online"}, headers=as_("agent-ada"))
    assert own.status_code == 200, own.text
    feed = await world.http.get(f"/v1/agents/{ada}/feed", headers=as_("agent"))
    assert feed.status_code == 403
    ws_base = world.base.replace("http://", "ws://")
    for key, code in ((None, 4401), (world.other_admin, 4404), (world.keys["agent"], 4403)):
        query = f"?access_token={key}" if key else ""
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with websockets.connect(f"{ws_base}/v1/agents/{ada}/feed/ws{query}") as ws:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code


def token(world: World, *, alg: str = "HS256", **claims: Any) -> str:
    body = {
        "sub": "someone@idp",
        "tenant": world.desk.tenant,
        "role": "agent",
        "agent_id": world.ids["agent_id"],
        "aud": AUDIENCE,
        "iss": ISSUER,
        "exp": datetime.now(UTC) + timedelta(minutes=5),
        **claims,
    }
    body = {k: v for k, v in body.items() if v is not None}
    if alg == "HS256":
        return jwt.encode(body, HS_SECRET, algorithm="HS256")
    return jwt.encode(body, world.rsa_key, algorithm="RS256", headers={"kid": "k1"})


async def test_jwt_bearer_tokens_hs256_and_rs256_from_jwks(world: World) -> None:
    conv = f"/v1/conversations/{world.ids['conversation_id']}"

    async def status(tok: str, path: str = conv) -> int:
        return (await world.http.get(path, headers={"Authorization": f"Bearer {tok}"})).status_code

    assert await status(token(world)) == 200
    assert await status(token(world, alg="RS256")) == 200
    assert await status(token(world, agent_id=world.desk.agent("agent-grace"))) == 404  # not her conversation
    assert await status(token(world, role="supervisor", agent_id=None), "/v1/stats/kpis") == 200
    assert await status(token(world), "/v1/stats/kpis") == 403
    assert await status(token(world, tenant=f"{world.desk.tenant}-other", role="admin")) == 404
    refused = [
        token(world, exp=datetime.now(UTC) - timedelta(minutes=1)),
        token(world, aud="someone-else"),
        token(world, iss="https://evil.example/"),
        token(world, role="root"),
        token(world, tenant=None),
        jwt.encode(
            {
                "tenant": world.desk.tenant,
                "role": "admin",
                "aud": AUDIENCE,
                "iss": ISSUER,
                "exp": datetime.now(UTC) + timedelta(minutes=5),
            },
            "wrong-secret-of-enough-length-0123456789",
            algorithm="HS256",
        ),
        jwt.encode({"tenant": world.desk.tenant, "role": "admin"}, None, algorithm="none"),
    ]
    for tok in refused:
        assert await status(tok) == 401, jwt.decode(tok, options={"verify_signature": False})


async def test_api_keys_are_created_rotated_and_revoked_by_admins(world: World) -> None:
    admin = {"Authorization": f"Bearer {world.keys['admin']}"}
    made = await world.http.post(
        "/v1/api-keys",
        json={"name": "ada's console", "role": "agent", "agent_id": world.ids["agent_id"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    first = made.json()
    conv = f"/v1/conversations/{world.ids['conversation_id']}"
    assert (await world.http.get(conv, headers={"Authorization": f"Bearer {first['key']}"})).status_code == 200
    listed = (await world.http.get("/v1/api-keys", headers=admin)).json()["items"]
    assert first["prefix"] in [k["prefix"] for k in listed]
    assert first["key"] not in json.dumps(listed), "keys are shown once, never listed"
    rotated = await world.http.post(f"/v1/api-keys/{first['id']}/rotate", headers=admin)
    assert rotated.status_code == 201
    second = rotated.json()
    assert second["role"] == "agent" and second["agent_id"] == world.ids["agent_id"]
    assert (await world.http.get(conv, headers={"Authorization": f"Bearer {first['key']}"})).status_code == 401
    assert (await world.http.get(conv, headers={"Authorization": f"Bearer {second['key']}"})).status_code == 200
    assert (await world.http.delete(f"/v1/api-keys/{second['id']}", headers=admin)).status_code == 204
    assert (await world.http.get(conv, headers={"Authorization": f"Bearer {second['key']}"})).status_code == 401
    bad = await world.http.post("/v1/api-keys", json={"name": "x", "role": "agent"}, headers=admin)
    assert bad.status_code == 409  # an agent key must say which agent


async def test_the_audit_log_records_who_read_or_changed_what(world: World) -> None:
    conv = world.ids["conversation_id"]
    await world.http.get(f"/v1/conversations/{conv}", headers={"Authorization": f"Bearer {world.keys['agent-ada']}"})
    await world.http.get(
        "/v1/customers",
        params={"identifier": "someone@example.com"},
        headers={"Authorization": f"Bearer {world.keys['supervisor']}"},
    )
    page = await world.http.get("/v1/audit", headers={"Authorization": f"Bearer {world.keys['admin']}"})
    assert page.status_code == 200
    items = page.json()["items"]
    read = next(i for i in items if i["route"] == "/v1/conversations/{conversation_id}")
    assert read["actor"] == world.keys["agent-ada"][:10] and read["role"] == "agent" and read["status"] == 200
    assert read["target"] == {"conversation_id": conv}
    assert any(i["route"] == "/v1/customers" and i["role"] == "supervisor" for i in items)
    assert "someone@example.com" not in page.text, "query strings (personal data) are not recorded"
    other = await world.http.get("/v1/audit", headers={"Authorization": f"Bearer {world.other_admin}"})
    assert conv not in other.text
