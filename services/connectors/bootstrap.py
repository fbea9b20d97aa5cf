"""The connectors' composition root: which channel connectors run, on which bus, behind which HTTP app."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from services.connectors.channels.chat import ChatConnector
from services.connectors.channels.email import EmailConnector
from services.connectors.channels.in_app import InAppConnector
from services.connectors.channels.meta import MetaConnector
from services.connectors.channels.telegram import TelegramConnector
from services.connectors.channels.twilio_sms import TwilioSmsConnector
from services.connectors.channels.twilio_voice import TwilioVoiceConnector
from services.connectors.runtime import Connector, ConnectorRuntime
from shared import metrics, problems, tracing
from shared.bus import Bus
from shared.bus_kafka import KafkaBus
from shared.bus_memory import MemoryBus
from shared.lifespan import lifespan
from shared.settings import Settings
from shared.topics import Topics

FACTORIES = {
    "email": EmailConnector,
    "chat": ChatConnector,
    "meta": MetaConnector,
    "telegram": TelegramConnector,
    "twilio": TwilioSmsConnector,
    "voice": TwilioVoiceConnector,
    "inapp": InAppConnector,
}
ALL = tuple(FACTORIES)


def make_bus(settings: Settings) -> Bus:
    if settings.kafka_bootstrap:
        return KafkaBus.from_settings(
            settings, client_id=f"{settings.kafka_client_id}-connector", topics=Topics(settings.topic_prefix).all()
        )
    return MemoryBus()


def build_runtime(settings: Settings, names: Sequence[str] = ALL, *, bus: Bus | None = None) -> ConnectorRuntime:
    unknown = set(names) - set(FACTORIES)
    if unknown:
        raise ValueError(f"unknown connectors: {', '.join(sorted(unknown))} (known: {', '.join(ALL)})")
    connectors: list[Connector] = [FACTORIES[n](settings) for n in names]
    tracing.configure(settings.otlp_endpoint, "switchboard-connectors")
    instance = settings.instance_id or f"connector-{uuid.uuid4().hex[:8]}"
    return ConnectorRuntime(settings, bus or make_bus(settings), connectors, instance, owns_bus=bus is None)


def mount(app: FastAPI, runtime: ConnectorRuntime) -> None:
    if not runtime.inbound:
        return  # an outbound-only process serves health endpoints only
    for connector in runtime.connectors:
        routes = connector.routes()
        if routes is not None:
            problems.document_problems(routes.routes)
            app.include_router(routes)


def create_app(runtime: ConnectorRuntime, *, manage_lifecycle: bool = True) -> FastAPI:
    app = FastAPI(title="Switchboard connectors", version="0.1.0", lifespan=lifespan(runtime, manage=manage_lifecycle))
    problems.install(app)
    metrics.install(app)
    mount(app, runtime)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], response_model=None)
    async def readyz() -> dict[str, str] | JSONResponse:
        if not runtime.ready:
            return problems.problem(503, "starting or stopping", slug="not-ready", title="Not ready")
        return {"status": "ready"}

    app.add_middleware(problems.BodyLimit, max_bytes=runtime.settings.max_body_bytes)
    return app
