"""The bare HTTP ingest limit that `bench_http` measures in the same run as the router: the same request
(POST /v1/messages, the same body) on the same server stack (uvicorn on uvloop with httptools) and the same
Kafka producer (the project's KafkaBus, from the same SWITCHBOARD_* settings), with no framework and no logic
beyond the minimum: read the body, parse it, publish it as one record keyed by the customer to the events
topic, answer 202 with an id. Nothing is validated, authenticated, limited or logged; /readyz answers once the
producer is up.

    SWITCHBOARD_KAFKA_BOOTSTRAP=... SWITCHBOARD_TOPIC_PREFIX=... SWITCHBOARD_HTTP_PORT=... \
        python -m tests.bench.bare_http"""

from __future__ import annotations

import asyncio
import signal
import uuid
from typing import Any

import orjson
import uvicorn
import uvloop

from services.router.bootstrap import make_bus
from shared.bus import Outgoing
from shared.settings import Settings
from shared.topics import Topics

ACCEPTED = [(b"content-type", b"application/json")]


def build(settings: Settings) -> Any:
    bus = make_bus(settings)
    topic = Topics(settings.topic_prefix).events
    ready = False

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal ready
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await bus.start()
                    ready = True
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await bus.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/readyz":
            await send({"type": "http.response.start", "status": 200 if ready else 503, "headers": ACCEPTED})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        customer = orjson.loads(body)["customer"]["external_id"]
        await bus.publish([Outgoing(topic, body, customer.encode(), ())])
        answer = orjson.dumps({"event_id": uuid.uuid4().hex, "status": "accepted"})
        await send({"type": "http.response.start", "status": 202, "headers": ACCEPTED})
        await send({"type": "http.response.body", "body": answer})

    return app


async def serve(settings: Settings) -> None:
    config = uvicorn.Config(build(settings), host=settings.http_host, port=settings.http_port, log_config=None)
    server = uvicorn.Server(config)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, lambda: setattr(server, "should_exit", True))
    await server.serve()


def main() -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(Settings()))


if __name__ == "__main__":
    main()
