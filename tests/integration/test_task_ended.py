"""A loop of the router that ends before the router is told to stop (a consume loop ended by an error it did
not expect) takes the replica out of readiness, so an orchestrator restarts it: it never sits ready and idle
while its partitions go unread."""

from __future__ import annotations

import asyncio

import httpx

from services.router.entrypoints.http.app import create_app
from tests.support.runtime import Desk, asgi_client, embedded_desk

desk = embedded_desk


async def test_a_loop_that_ends_early_makes_the_replica_not_ready(desk: Desk) -> None:
    async with asgi_client(create_app(desk.router, manage_lifecycle=False)) as http:
        assert (await http.get("/readyz")).status_code == 200

        async def consume_loop() -> None:
            await asyncio.sleep(0)
            raise RuntimeError("a failure the loop did not expect")

        desk.router._spawn(consume_loop())
        for _ in range(50):
            if not desk.router.ready:
                break
            await asyncio.sleep(0.02)
        answer: httpx.Response = await http.get("/readyz")
    assert answer.status_code == 503
