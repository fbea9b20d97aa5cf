"""Session fixtures. Tests that need the real PostgreSQL and Kafka ask for ``servers``: it starts or reuses
them through deploy/local/services.sh (or takes SWITCHBOARD_DATABASE_URL / SWITCHBOARD_KAFKA_BOOTSTRAP), and
fails the test, never skips it, when they cannot be had."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.servers import exported_by_services_sh

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Servers:
    database_url: str
    kafka_bootstrap: str


@pytest.fixture(scope="session")
def servers() -> Servers:
    db = os.environ.get("SWITCHBOARD_DATABASE_URL", "")
    kafka = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP", "")
    if not (db.startswith("postgresql") and kafka):
        env = exported_by_services_sh("up", "PostgreSQL and Kafka, which are needed,")
        db, kafka = env["SWITCHBOARD_DATABASE_URL"], env["SWITCHBOARD_KAFKA_BOOTSTRAP"]
    parsed = make_url(db)
    for name, host, port in (
        ("PostgreSQL", parsed.host or "127.0.0.1", parsed.port or 5432),
        ("Kafka", *kafka.split(",")[0].rsplit(":", 1)),
    ):
        try:
            socket.create_connection((str(host), int(port)), timeout=5).close()
        except OSError as exc:
            pytest.fail(f"{name} at {host}:{port} is unreachable ({exc}); it is needed, not optional", pytrace=False)
    return Servers(db, kafka)


def random_name(prefix: str) -> str:
    """Random ids keep tests apart on shared servers, so no table ever needs truncating."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite stops and restarts the shared servers: it runs last, so no other test meets a restart.
    The e2e suite runs just before it: its log capture (tests/e2e/conftest.py) then covers the e2e tests."""

    def phase(item: pytest.Item) -> int:
        node = item.nodeid.replace("\\", "/")
        return 2 if "tests/faults/" in node else 1 if "tests/e2e/" in node else 0

    items.sort(key=phase)
