"""The agent's SSE feed: a reconnect with Last-Event-ID gets what it missed, each event exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.support.runtime import serving, settings_for, started_desk
from tests.support.sse import sse_events


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_feed_resumes_after_last_event_id_without_gaps_or_repeats(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    servers = request.getfixturevalue("servers") if shape == "production" else None
    settings = settings_for(shape, tmp_path, servers)
    async with started_desk(settings) as desk, serving(desk.router) as base:
        auth = {"Authorization": f"Bearer {desk.key}"}
        ada = desk.agent("agent-ada")
        url = f"/v1/agents/{ada}/feed"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def post(n: int) -> None:
                r = await http.post(
                    "/v1/messages", headers=auth, json={"customer": {"external_id": f"u-{n}"}, "text": f"m{n}"}
                )
                assert r.status_code == 202

            seen: list[str] = []
            async with http.stream("GET", url, headers=auth) as feed:
                events = sse_events(feed)
                await post(1)
                first = await asyncio.wait_for(anext(events), 5)
                seen.append(first.json()["conversation_id"])
            # disconnected: two more arrive meanwhile (capacity 3 for in-app)
            await post(2)
            await post(3)
            await asyncio.sleep(1.0)
            async with http.stream("GET", url, headers={**auth, "Last-Event-ID": first.id or ""}) as feed:
                events = sse_events(feed)
                for _ in range(2):
                    seen.append((await asyncio.wait_for(anext(events), 5)).json()["conversation_id"])
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(anext(events), 1.0)
            assert len(seen) == len(set(seen)) == 3

            # A first connection (no Last-Event-ID) shows the agent's current workload once.
            async with http.stream("GET", url, headers=auth) as feed:
                events = sse_events(feed)
                current = [(await asyncio.wait_for(anext(events), 5)).json()["conversation_id"] for _ in range(3)]
            assert sorted(current) == sorted(seen)


@pytest.mark.parametrize("shape", ["embedded", "production"])
async def test_websocket_feed_resumes_after_the_last_event_id_exactly_once(
    shape: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import json

    import websockets

    servers = request.getfixturevalue("servers") if shape == "production" else None
    async with started_desk(settings_for(shape, tmp_path, servers)) as desk, serving(desk.router) as base:
        auth = {"Authorization": f"Bearer {desk.key}"}
        ada = desk.agent("agent-ada")
        url = base.replace("http://", "ws://") + f"/v1/agents/{ada}/feed/ws"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:

            async def post(n: int) -> None:
                r = await http.post(
                    "/v1/messages", headers=auth, json={"customer": {"external_id": f"w-{n}"}, "text": f"m{n}"}
                )
                assert r.status_code == 202

            async with websockets.connect(url, additional_headers=auth) as ws:
                await post(1)
                first = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert first["event"] == "assignment" and first["data"]["agent_id"] == ada
            await post(2)
            await post(3)
            await asyncio.sleep(1.0)
            seen = [first["data"]["conversation_id"]]
            async with websockets.connect(f"{url}?access_token={desk.key}&last_event_id={first['id']}") as ws:
                for _ in range(2):
                    seen.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["data"]["conversation_id"])
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 1.0)
            assert len(seen) == len(set(seen)) == 3

        for target, code in ((url, 4401), (url.replace(ada, "nobody") + f"?access_token={desk.key}", 4404)):
            async with websockets.connect(target) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code
