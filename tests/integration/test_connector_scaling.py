"""Connectors on real Kafka: one runs alone and produces what it receives; two instances of the same
connector share its outbound topic and deliver each reply exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from services.connectors.bootstrap import build_runtime, create_app
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import Channel, IdentityKind, decode_event
from shared.outbound import Recipient, decode_status, encode
from shared.topics import Topics
from tests.conftest import Servers
from tests.support.consumers import drain, reading
from tests.support.http import http_client
from tests.support.outbound import outbound_message
from tests.support.providers import fake_providers
from tests.support.runtime import serve_app, settings_for
from tests.support.system import SECRETS
from tests.unit.connectors.test_normalize import TG_MESSAGE


async def read(bus: KafkaBus, topic: str, want: int, seconds: float = 30) -> list[bytes]:
    async with reading(bus, topic) as consumer:
        return [r.value for r in await drain(consumer, want, seconds, max_records=500)]


async def test_a_connector_alone_produces_webhook_messages_to_kafka(servers: Servers, tmp_path: Path) -> None:
    settings = settings_for("production", tmp_path, servers, **SECRETS, connector_tenant="acme")
    runtime = build_runtime(settings, ["telegram"])
    await runtime.start()
    try:
        async with serve_app(create_app(runtime, manage_lifecycle=False)) as base, http_client() as http:
            r = await http.post(
                f"{base}/webhooks/telegram",
                json=TG_MESSAGE,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRETS["telegram_secret_token"]},
            )
            assert r.status_code == 200
        reader = KafkaBus(servers.kafka_bootstrap, partitions=4)
        await reader.start()
        (raw,) = await read(reader, runtime.topics.events, 1)
        await reader.close()
    finally:
        await runtime.stop()
    event = decode_event(raw)
    assert (event.tenant, event.channel, event.sender.value, event.content.text) == (
        "acme",
        Channel.TELEGRAM,
        "1111111",
        "/start",
    )


async def test_two_instances_share_the_outbound_topic_without_double_delivery(servers: Servers, tmp_path: Path) -> None:
    n = 60
    async with fake_providers() as fake:
        settings = settings_for("production", tmp_path, servers, **SECRETS, telegram_api_base_url=fake.base)
        runtimes = [
            build_runtime(settings.model_copy(update={"instance_id": f"tg-{i}"}), ["telegram"]) for i in range(2)
        ]
        for r in runtimes:
            await r.start()
        topics = Topics(settings.topic_prefix)
        producer = KafkaBus(servers.kafka_bootstrap, partitions=4)
        await producer.start()
        try:
            now = datetime.now(UTC)
            replies = [
                outbound_message(
                    Channel.TELEGRAM,
                    Recipient(kind=IdentityKind.TELEGRAM_ID, value=str(9000 + i)),
                    f"reply {i}",
                    created_at=now,
                    id=f"reply-{i}",
                    tenant="acme",
                    conversation_id=f"conv-{i % 12}",
                )
                for i in range(n)
            ]
            await producer.publish(
                [Outgoing(topics.outbound("telegram"), encode(m), m.conversation_id.encode()) for m in replies]
            )
            statuses = [decode_status(raw) for raw in await read(producer, topics.status, n, seconds=60)]
        finally:
            await producer.close()
            for r in runtimes:
                await r.stop()
    texts = [r.json["text"] for r in fake.requests]
    assert sorted(texts) == sorted(f"reply {i}" for i in range(n)), "each reply delivered exactly once"
    assert sorted(s.message_id for s in statuses) == sorted(m.id for m in replies)
    assert {s.state for s in statuses} == {"sent"}
    assert all(r.delivered > 0 for r in runtimes), "both instances took a share of the partitions"
    assert sum(r.delivered for r in runtimes) == n


async def test_inbound_and_outbound_halves_run_as_separate_processes(servers: Servers, tmp_path: Path) -> None:
    """connector_mode splits a connector so webhooks scale on CPU and delivery on outbound lag."""
    async with fake_providers() as fake:
        base = settings_for("production", tmp_path, servers, **SECRETS, telegram_api_base_url=fake.base)
        inbound = build_runtime(base.model_copy(update={"connector_mode": "inbound"}), ["telegram"])
        outbound = build_runtime(base.model_copy(update={"connector_mode": "outbound"}), ["telegram"])
        await inbound.start()
        await outbound.start()
        try:
            in_app = create_app(inbound, manage_lifecycle=False)
            out_app = create_app(outbound, manage_lifecycle=False)
            assert "/webhooks/telegram" in in_app.openapi()["paths"]
            assert "/webhooks/telegram" not in out_app.openapi()["paths"]
            producer = KafkaBus(servers.kafka_bootstrap, partitions=4)
            await producer.start()
            to = Recipient(kind=IdentityKind.TELEGRAM_ID, value="77")
            msg = outbound_message(Channel.TELEGRAM, to, "split", created_at=datetime.now(UTC), id="r-1")
            await producer.publish([Outgoing(inbound.topics.outbound("telegram"), encode(msg), b"c-1")])
            await read(producer, inbound.topics.status, 1)
            await producer.close()
        finally:
            await inbound.stop()
            await outbound.stop()
    assert (inbound.delivered, outbound.delivered) == (0, 1)
    assert [r.json["text"] for r in fake.requests] == ["split"]
