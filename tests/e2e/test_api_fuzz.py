"""schemathesis over the full OpenAPI of a running desk (`switchboard dev`: the router's API and every
connector's webhooks in one process): generated requests, valid and not, as each role of the tenant (admin,
supervisor, app, and an agent key acting as Ada, the demo desk's online agent). No answer may be a 5xx; every
answer must match the schema (status documented, media type, body) and every 4xx be a problem naming its
status; an operation whose `x-roles` do not list the caller's role answers 403, never a 2xx. On both shapes:
the embedded store and bus, and the real PostgreSQL and Kafka (which refuse what SQLite takes: NUL,
out-of-range dates); afterwards the desk must still route a new message. Bounded by
SWITCHBOARD_FUZZ_EXAMPLES (per operation and shape, as admin) and SWITCHBOARD_FUZZ_ROLE_EXAMPLES (as each other
role on the operations it may call; 3 on those it may not): 10 and 6 in `make test`, 100 and 50 in `make fuzz`.
Generation is derandomized, so a run is reproducible."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import random_name
from tests.support.databases import fresh_database
from tests.support.fuzz_checks import problem_names_its_status, refused_outside, refused_without_credentials
from tests.support.processes import SWITCHBOARD, dev_desk

KEY = "sb_fuzz-" + os.urandom(12).hex()
EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_EXAMPLES", "10"))
ROLE_EXAMPLES = int(os.environ.get("SWITCHBOARD_FUZZ_ROLE_EXAMPLES", "6"))
REFUSED_EXAMPLES = 3  # an operation outside the role refuses before any of its own code runs
ROLES = ("admin", "supervisor", "agent", "app")
AGENT = "agent-ada"  # the demo desk's online agent: the fuzz's messages are offered to her


@pytest.fixture(scope="module", params=["embedded", "production"])
def desk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    settings = {"rate_limit_per_s": "100000", "rate_limit_burst": "100000"}
    with ExitStack() as stack:
        if request.param == "production":
            servers = request.getfixturevalue("servers")
            settings |= {
                "database_url": stack.enter_context(fresh_database(servers.database_url, "switchboard_fuzz_")),
                "kafka_bootstrap": servers.kafka_bootstrap,
                "topic_prefix": random_name("fuzz-") + ".",
                "consumer_group": random_name("fuzz-g-"),
                "kafka_partitions": "4",
                "inapp_identity_secret": os.urandom(16).hex(),
            }
        with dev_desk(home, KEY, **settings) as base:
            yield base
        log = (home / "dev.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


@pytest.fixture(scope="module")
def keys(desk: str) -> dict[str, str]:
    """A key of each role for the demo tenant, made through the API by its admin."""
    made = {"admin": KEY}
    with httpx.Client(base_url=desk, headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as http:
        for role in ROLES[1:]:
            body = {"name": f"fuzz {role}", "role": role} | ({"agent_id": AGENT} if role == "agent" else {})
            answer = http.post("/v1/api-keys", json=body)
            assert answer.status_code == 201, answer.text
            made[role] = answer.json()["key"]
    return made


@pytest.mark.parametrize("role", ROLES)
def test_no_server_error_no_schema_violation_and_403_outside_the_role(
    desk: str, keys: dict[str, str], role: str
) -> None:
    """As admin, every operation; as another role, those that take the bearer key (the others, connectors'
    webhooks and token links, ignore it). Live streams are called only where they refuse: admitted, they
    never end (their refusals are also covered by the access matrix)."""
    schema = schemathesis.openapi.from_url(f"{desk}/openapi.json")
    base = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    failures: dict[str, str] = {}
    called = refused = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        roles = operation.definition.raw.get("x-roles")
        admitted = roles is None or role in roles
        if (roles is None and role != "admin") or (admitted and operation.path.endswith("/feed")):
            continue
        called += 1
        refused += not admitted
        checks = [*base, problem_names_its_status, refused_without_credentials] if roles else base
        if not admitted:
            checks.append(refused_outside(role, roles))
        examples = EXAMPLES if role == "admin" else ROLE_EXAMPLES if admitted else REFUSED_EXAMPLES
        for mode in schemathesis.GenerationMode:  # well-formed requests, and malformed ones (must be 4xx)
            try:
                fuzz(operation, mode, examples, keys[role], checks)
            except Unsatisfiable:
                assert mode is schemathesis.GenerationMode.NEGATIVE  # no malformed request exists (e.g. no body)
            except (Exception, FailureGroup) as exc:  # every operation is tried; all failures are reported together
                failures[f"{operation.label} ({mode.value})"] = str(exc)[:1500]
    assert called >= 40
    assert (refused > 0) == (role != "admin")
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())


def fuzz(operation: Any, mode: schemathesis.GenerationMode, examples: int, key: str, checks: list[Any]) -> None:
    """``examples`` generated requests to ``operation`` with ``key``, each answer held to ``checks``."""

    # derandomized and without the example database: every run sends the same requests
    @given(case=operation.as_strategy(mode))
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, timeout=30, checks=checks)

    call()


def test_the_fuzzed_desk_is_still_healthy(desk: str) -> None:
    assert httpx.get(f"{desk}/readyz", timeout=10).status_code == 200
    assert Path(SWITCHBOARD).exists()


def test_the_fuzzed_desk_still_routes_a_new_message_within_seconds(desk: str) -> None:
    """No poison value the fuzz sent wedged the pipeline: a new customer's message is stored and offered to an
    agent. The fuzz's own messages fill the demo agents' capacity (Ada's three offers), so when nobody takes
    ours, an agent with room comes online in its queue, as a supervisor would do."""
    with httpx.Client(base_url=desk, headers={"Authorization": f"Bearer {KEY}"}, timeout=10) as http:
        external_id = random_name("u-after-fuzz-")
        posted = http.post("/v1/messages", json={"customer": {"external_id": external_id}, "text": "Anyone there?"})
        assert posted.status_code == 202, posted.text

        def stored() -> Any:
            found = http.get("/v1/customers", params={"identifier": f"app_user:{external_id}"}).json()["items"]
            return found and found[0]["conversations"] and found[0]["conversations"][0]["id"]

        conversation_id = poll(stored, 10)
        assert conversation_id, "the message was not stored within 10 s"
        url = f"/v1/conversations/{conversation_id}"

        def agent() -> Any:
            return http.get(url).json()["agent_id"]

        if not poll(agent, 3):
            queue = http.get(url).json()["queue_id"]
            joined = http.post(
                "/v1/agents", json={"name": "After the fuzz", "queue_ids": [queue], "capacity": {"default": 50}}
            )
            assert joined.status_code == 201, joined.text
            online = http.put(f"/v1/agents/{joined.json()['id']}/presence", json={"presence": "online"})
            assert online.status_code == 200, online.text
        assert poll(agent, 10), http.get(url).text


def poll(probe: Callable[[], Any], timeout_s: float) -> Any:
    """``probe()`` once it is truthy, or its last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value
