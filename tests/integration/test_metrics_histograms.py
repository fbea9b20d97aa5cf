"""`/metrics` has the histograms operators set SLOs on: how long customers waited for an agent, the time from a
message reaching Switchboard to its offer, and HTTP request durations per route template. One message is sent
and accepted; each histogram counts it once, with a duration bounded by what the test saw from outside."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.runtime import Desk, admin_api, conversation_of, desk_fixture, wait_for

desk = desk_fixture()
api = admin_api


async def samples(api: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = await api.get("/metrics")
    assert r.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_a_message_offered_and_accepted_is_counted_in_each_histogram(desk: Desk, api: httpx.AsyncClient) -> None:
    before = await samples(api)
    started = time.monotonic()
    r = await api.post("/v1/messages", json={"customer": {"external_id": "u-metrics"}, "text": "hello"})
    assert r.status_code == 202, r.text
    conv = await wait_for(lambda: conversation_of(desk, r.json()["event_id"]))
    ada = desk.agent("agent-ada")

    async def accepted() -> bool:  # Ada takes it: accepting an offer, or assigned it directly
        await api.post(f"/v1/agents/{ada}/accept", json={"conversation_id": conv["id"]})
        return (await api.get(f"/v1/conversations/{conv['id']}")).json()["agent_id"] == ada

    await wait_for(accepted)
    elapsed = time.monotonic() - started
    after = await samples(api)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("switchboard_wait_for_agent_seconds_count", channel="in_app") == 1
    waited = grew("switchboard_wait_for_agent_seconds_sum", channel="in_app")
    assert 0 <= waited <= elapsed
    assert grew("switchboard_ingest_to_assignment_seconds_count") == 1, "the offer, in the message's transaction"
    assert 0 <= grew("switchboard_ingest_to_assignment_seconds_sum") <= elapsed
    posted = {"method": "POST", "route": "/v1/messages", "status": "202"}
    assert grew("switchboard_http_request_duration_seconds_count", **posted) == 1
    read = {"method": "GET", "route": "/v1/conversations/{conversation_id}", "status": "200"}
    assert grew("switchboard_http_request_duration_seconds_count", **read) >= 1, "by route template, not path"
    assert value(after, "switchboard_http_request_duration_seconds_bucket", le="+Inf", **posted) >= 1
