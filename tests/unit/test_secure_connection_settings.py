"""Kafka and PostgreSQL security settings: incomplete or contradictory combinations fail at start-up with a
message naming the setting; complete ones become the clients' TLS and SASL arguments."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.bus_kafka import ClientCredentials, KafkaSecurity
from shared.settings import Settings
from shared.store import Database, DatabaseTls

PG = "postgresql+asyncpg://sb@db.example:5432/sb"


@pytest.fixture(autouse=True)
def no_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test` exports the local servers' settings: each case here says all it means."""
    for name in list(os.environ):
        if name.startswith("SWITCHBOARD_"):
            monkeypatch.delenv(name)


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "needs SWITCHBOARD_KAFKA_SASL_MECHANISM"),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "SCRAM-SHA-512",
                "kafka_sasl_username": "u",
            },
            "needs SWITCHBOARD_KAFKA_SASL_USERNAME and SWITCHBOARD_KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u", "kafka_sasl_password": "p"}, "SASL_SSL or"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "OAUTHBEARER"}
            | {"kafka_sasl_username": "id", "kafka_sasl_password": "secret"},
            "SWITCHBOARD_KAFKA_SASL_OAUTH_TOKEN_URL",
        ),
        (
            {"environment": "prod", "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_sasl_mechanism": "PLAIN"}
            | {"kafka_sasl_username": "u", "kafka_sasl_password": "p"},
            "SASL PLAIN sends the password as is",
        ),
        ({"kafka_ssl_cafile": "/etc/hostname"}, "need SWITCHBOARD_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"}, "no such file"),
        ({"database_ssl_mode": "verify-full"}, "PostgreSQL only"),
        ({"database_url": PG, "database_ssl_mode": "require", "database_ssl_rootcert": "/etc/hostname"}, "verify-ca"),
        ({"database_url": PG, "database_ssl_mode": "verify-ca", "database_ssl_cert": "/etc/hostname"}, "go together"),
        ({"database_url": PG, "database_ssl_mode": "verify-full", "database_ssl_rootcert": "/no/ca.pem"}, "no such"),
    ],
)
def test_incomplete_security_settings_fail_at_start_up(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        settings(**values)


def test_sasl_ssl_settings_become_the_kafka_clients_arguments(tmp_path: Path) -> None:
    ca = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    args = KafkaSecurity.from_settings(
        settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-256",
            kafka_sasl_username="u",
            kafka_sasl_password="p",
            kafka_ssl_cafile=ca,
        )
    ).client_args()
    context = args.pop("ssl_context")
    assert args == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "u",
        "sasl_plain_password": "p",
    }
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_oauthbearer_gets_a_client_credentials_token_provider() -> None:
    args = KafkaSecurity(
        "SASL_SSL", "OAUTHBEARER", "client", "secret", oauth_token_url="https://idp.example/token"
    ).client_args()
    assert args["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(args["sasl_oauth_token_provider"], ClientCredentials)


def test_plaintext_is_the_default_and_has_no_tls() -> None:
    assert KafkaSecurity.from_settings(settings()).client_args() == {
        "security_protocol": "PLAINTEXT",
        "ssl_context": None,
    }


@pytest.mark.parametrize(
    ("mode", "verify", "hostname"),
    [
        ("require", ssl.CERT_NONE, False),
        ("verify-ca", ssl.CERT_REQUIRED, False),
        ("verify-full", ssl.CERT_REQUIRED, True),
    ],
)
def test_database_ssl_modes_are_libpqs(mode: str, verify: ssl.VerifyMode, hostname: bool) -> None:
    context = DatabaseTls(mode).ssl_arg()
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (verify, hostname)
    assert DatabaseTls("disable").ssl_arg() is False


def test_libpq_tls_parameters_in_the_url_are_taken_and_not_passed_to_asyncpg() -> None:
    db = Database(f"{PG}?sslmode=verify-full&application_name=sb")
    assert db.tls == DatabaseTls("verify-full")
    assert dict(db.engine.url.query) == {"application_name": "sb"}
    settings_win = Database(f"{PG}?sslmode=verify-full", tls=DatabaseTls("require"))
    assert settings_win.tls == DatabaseTls("require")
