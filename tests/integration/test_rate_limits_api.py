"""Rate limits over HTTP: past the burst an API key gets 429 with Retry-After, and recovers after it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.http import http_client
from tests.support.runtime import serving, settings_for, started_desk


async def test_429_with_retry_after_then_recovery(tmp_path: Path) -> None:
    settings = settings_for("embedded", tmp_path, rate_limit_per_s=2.0, rate_limit_burst=3)
    async with (
        started_desk(settings) as desk,
        serving(desk.router) as base,
        http_client(base_url=base, headers={"Authorization": f"Bearer {desk.key}"}) as http,
    ):
        codes = [(await http.get("/v1/queues")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        limited = await http.get("/v1/queues")
        assert limited.status_code == 429
        assert limited.headers["content-type"] == "application/problem+json"
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 2
        await asyncio.sleep(retry_after)
        assert (await http.get("/v1/queues")).status_code == 200
