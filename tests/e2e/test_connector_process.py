"""`switchboard connector telegram` on its own, as an operator runs it: it serves its webhook, produces to real
Kafka, and exits cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
from pathlib import Path

from shared.bus_kafka import KafkaBus
from shared.events import decode_event
from shared.topics import Topics
from tests.conftest import Servers, random_name
from tests.support.http import http_client
from tests.support.processes import start_telegram_connector, stop
from tests.support.runtime import free_port
from tests.unit.connectors.test_normalize import TG_MESSAGE


async def test_a_connector_process_serves_its_webhook_produces_to_kafka_and_stops_cleanly(
    servers: Servers, tmp_path: Path
) -> None:
    port, prefix = free_port(), random_name("t-") + "."
    proc = await asyncio.to_thread(
        start_telegram_connector, servers.kafka_bootstrap, prefix, port, tmp_path / "connector.log"
    )
    try:
        async with http_client() as http:
            r = await http.post(
                f"http://127.0.0.1:{port}/webhooks/telegram",
                json=TG_MESSAGE,
                headers={"X-Telegram-Bot-Api-Secret-Token": "tg-secret"},
            )
            assert r.status_code == 200
            spec = (await http.get(f"http://127.0.0.1:{port}/openapi.json")).json()
            assert "/webhooks/telegram" in spec["paths"] and "/webhooks/meta" not in spec["paths"]
    finally:
        code = stop(proc)
    assert code == 0
    bus = KafkaBus(servers.kafka_bootstrap, partitions=4)
    await bus.start()
    consumer = await bus.subscribe([Topics(prefix).events], random_name("g-"))
    got = []
    async with asyncio.timeout(20):
        while not got:
            got = await consumer.getmany(0.2, 10)
    await consumer.close()
    await bus.close()
    assert decode_event(got[0].value).tenant == "acme"
