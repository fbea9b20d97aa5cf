"""Kafka over SASL_SSL and PostgreSQL over TLS, from SWITCHBOARD_* settings, against real servers that take
nothing else: a second PostgreSQL (ssl = on, hostssl + scram-sha-256 only) and a second Kafka node (SASL_SSL
only), both with certificates from a CA that deploy/local/services.sh tls-up generates. Certificate checks
are proven by a second CA, made here, that signed nothing the servers hold."""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import os
import shutil
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.router.bootstrap import RouterRuntime
from shared.bus import Outgoing
from shared.bus_kafka import KafkaBus
from shared.events import utcnow
from shared.settings import Settings
from shared.store import Database
from shared.topics import Topics
from tests.conftest import random_name
from tests.support.runtime import admin_client, conversation_of, serve_app, settings_for, started_desk, wait_for
from tests.support.servers import exported_by_services_sh

pytestmark = pytest.mark.servers
TOOLS = ("java", "keytool", "openssl")


@dataclass(frozen=True)
class TlsServers:
    database_url: str
    kafka_bootstrap: str
    ca: str
    password: str


@pytest.fixture(scope="session")
def tls_servers() -> TlsServers:
    """Starts (or reuses) the TLS pair once per session. On CI it fails when they cannot be had; elsewhere it
    skips only when a tool they need is not installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing and os.environ.get("CI") != "true":
        pytest.skip(f"the TLS test servers need {', '.join(missing)}, not installed here")
    env = exported_by_services_sh("tls-up", "the TLS PostgreSQL and Kafka")
    return TlsServers(
        env["LOCAL_TLS_DATABASE_URL"], env["LOCAL_TLS_KAFKA_BOOTSTRAP"], env["LOCAL_TLS_CA"], env["LOCAL_TLS_PASSWORD"]
    )


@pytest.fixture(scope="module")
def stranger_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A CA that signed none of the servers' certificates."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Not the servers' CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("stranger") / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def kafka_settings(servers: TlsServers, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        environment="test",
        kafka_bootstrap=servers.kafka_bootstrap,
        kafka_partitions=1,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="switchboard",
        kafka_sasl_password=servers.password,
        kafka_ssl_cafile=servers.ca,
    )
    return Settings(_env_file=None, **(base | overrides))  # type: ignore[call-arg]


def database_settings(servers: TlsServers, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        environment="test",
        database_url=servers.database_url,
        database_ssl_mode="verify-full",
        database_ssl_rootcert=servers.ca,
    )
    return Settings(_env_file=None, **(base | overrides))  # type: ignore[call-arg]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"])
async def test_a_record_goes_through_kafka_over_sasl_ssl(tls_servers: TlsServers, mechanism: str) -> None:
    settings = kafka_settings(tls_servers, kafka_sasl_mechanism=mechanism)
    assert await round_trip(settings, b"over TLS") == [b"over TLS"]


async def round_trip(settings: Settings, value: bytes) -> list[bytes]:
    """What a consumer reads back of ``value`` published on a new topic, through a bus built from ``settings``."""
    topic = random_name("secure-")
    bus = KafkaBus.from_settings(settings, client_id=random_name("c-"), topics=[topic])
    await bus.start()
    try:
        consumer = await bus.subscribe([topic], random_name("g-"))
        await bus.publish([Outgoing(topic, value, b"k")])
        records = await wait_for(lambda: consumer.getmany(0.5, 10), timeout_s=20)
        await consumer.close()
        return [r.value for r in records]
    finally:
        await bus.close()


def unsecured_jwt(subject: str) -> str:
    """An unsigned JWT (RFC 7519 §6), what Kafka's unsecured OAUTHBEARER validator takes."""
    now = int(time.time())

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + 3600})}."


def token_endpoint(client_id: str, client_secret: str, asked: list[dict[str, str]]) -> Starlette:
    """An OAuth 2.0 token endpoint taking the client-credentials grant with HTTP Basic client auth."""

    async def issue(request: Request) -> JSONResponse:
        form = dict(await request.form())
        asked.append({k: str(v) for k, v in form.items()})
        expected = "Basic " + base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
        if request.headers.get("authorization") != expected or form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        token = unsecured_jwt(client_id)
        return JSONResponse({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    return Starlette(routes=[Route("/token", issue, methods=["POST"])])


async def test_a_record_goes_through_kafka_with_oauthbearer_tokens(tls_servers: TlsServers) -> None:
    asked: list[dict[str, str]] = []
    async with serve_app(token_endpoint("switchboard-app", "app-secret", asked)) as issuer:
        settings = kafka_settings(
            tls_servers,
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_sasl_username="switchboard-app",
            kafka_sasl_password="app-secret",
            kafka_sasl_oauth_token_url=f"{issuer}/token",
            kafka_sasl_oauth_scope="kafka",
        )
        assert await round_trip(settings, b"with a token") == [b"with a token"]
    # one token, reused by every connection of the process until it nears expiry
    assert asked == [{"grant_type": "client_credentials", "scope": "kafka"}]


async def refused(bus: KafkaBus, caplog: pytest.LogCaptureFixture) -> str:
    """Why ``bus`` could not start (it must not): aiokafka raises "Unable to bootstrap" and logs the cause."""
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await bus.start()
    await bus.close()
    return "\n".join(r.getMessage() for r in caplog.records)


async def test_kafka_refuses_a_wrong_password(tls_servers: TlsServers, caplog: pytest.LogCaptureFixture) -> None:
    bus = KafkaBus.from_settings(kafka_settings(tls_servers, kafka_sasl_password="not-" + tls_servers.password))
    assert "SaslAuthenticationFailed" in await refused(bus, caplog)


async def test_kafka_is_refused_when_its_certificate_is_not_from_the_trusted_ca(
    tls_servers: TlsServers, stranger_ca: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = KafkaBus.from_settings(kafka_settings(tls_servers, kafka_ssl_cafile=stranger_ca))
    assert "CERTIFICATE_VERIFY_FAILED" in await refused(bus, caplog)
    # the same client trusting the servers' CA starts: the refusal was the certificate's
    trusting = KafkaBus.from_settings(kafka_settings(tls_servers))
    await trusting.start()
    await trusting.close()


async def test_postgresql_over_tls_with_verify_full(tls_servers: TlsServers) -> None:
    db = Database.from_settings(database_settings(tls_servers))
    try:
        async with db.read() as conn:
            row = (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).one()
        assert row.ssl is True
    finally:
        await db.close()


async def test_postgresql_tls_may_come_from_the_url_as_libpq_takes_it(tls_servers: TlsServers) -> None:
    db = Database(f"{tls_servers.database_url}?sslmode=verify-full&sslrootcert={tls_servers.ca}")
    try:
        async with db.read() as conn:
            assert (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar()
    finally:
        await db.close()


async def test_postgresql_verify_full_refuses_a_server_the_trusted_ca_did_not_sign(
    tls_servers: TlsServers, stranger_ca: str
) -> None:
    db = Database.from_settings(database_settings(tls_servers, database_ssl_rootcert=stranger_ca))
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            async with db.read() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await db.close()


@pytest.fixture
async def secure_router(tls_servers: TlsServers, tmp_path: Path) -> AsyncIterator[RouterRuntime]:
    """A router on the TLS PostgreSQL and the SASL_SSL Kafka, its store and bus built from settings alone."""
    settings = settings_for(
        "production",
        tmp_path,
        tls_servers,
        database_ssl_mode="verify-full",
        database_ssl_rootcert=tls_servers.ca,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="switchboard",
        kafka_sasl_password=tls_servers.password,
        kafka_ssl_cafile=tls_servers.ca,
    )
    bus = KafkaBus.from_settings(settings, topics=Topics(settings.topic_prefix).all())
    yield RouterRuntime(settings=settings, db=Database.from_settings(settings), bus=bus, clock=utcnow)


async def test_a_router_on_tls_servers_stores_a_posted_message(secure_router: RouterRuntime) -> None:
    async with started_desk(secure_router.settings, router=secure_router) as desk, admin_client(desk) as api:
        posted = await api.post("/v1/messages", json={"customer": {"external_id": "u-tls"}, "text": "hello"})
        assert posted.status_code == 202, posted.text
        conv = await wait_for(lambda: conversation_of(desk, posted.json()["event_id"]))
        assert conv["id"]
        async with desk.router.db.read() as conn:
            assert (await conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))).scalar()
