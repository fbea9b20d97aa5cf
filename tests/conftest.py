"""Session fixtures. Tests that need the real PostgreSQL and Kafka ask for ``servers``: it starts or reuses
them through deploy/local/services.sh (or takes SWITCHBOARD_DATABASE_URL / SWITCHBOARD_KAFKA_BOOTSTRAP), and
fails the test, never skips it, when they cannot be had.

The log capture covers the whole run: from its first test, every service process the tests start runs at
DEBUG and writes its log under this session's temporary directory, and this process's own records (the
routers and connectors the tests build in process) go there too, at DEBUG; when the run is done, none of it
may hold a test customer's email, phone or message text (tests/support/pii.py)."""

from __future__ import annotations

import logging
import os
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import pytest
from sqlalchemy.engine import make_url

from shared.logging import NOISY, JsonFormatter
from tests.support.pii import leaks
from tests.support.servers import exported_by_services_sh
from tests.support.topics import delete_new_topics, in_own_loop, topic_names

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
    _BROKER["bootstrap"] = kafka
    _BROKER_TOPICS.update(topic_names(kafka))
    if WORKER:
        db = _database_of_this_worker(db)
    return Servers(db, kafka)


def _database_of_this_worker(url: str) -> str:
    """A pytest-xdist worker's own database, made anew on the same server: every router's sweeps and SLA tick
    read their whole database (one deployment, one database), so a router another worker's test started on a
    shared one would fire this worker's tenants' clocks and timers. Topics are apart already (random prefixes)."""
    from tests.support.databases import create_database  # it imports this module

    name = f"{make_url(url).database or 'switchboard'}_{WORKER}"
    return in_own_loop(create_database(url, name))  # the caller may be in a loop


_BROKER: dict[str, str] = {}  # the shared broker, once a test asked for ``servers``
_BROKER_TOPICS: set[str] = set()  # what it held then


@pytest.fixture(scope="module", autouse=True)
def topics_deleted_after_the_module() -> Iterator[None]:
    """A module's topics go when it ends (tests/support/topics.py says why): those the broker did not hold when
    the module started, or when its first ``servers`` started. Autouse and module-scoped, this is set up before
    and torn down after every other fixture of the module, its routers and processes."""
    before = topic_names(_BROKER["bootstrap"]) if "bootstrap" in _BROKER else None
    yield
    if bootstrap := _BROKER.get("bootstrap"):
        delete_new_topics(
            bootstrap, _BROKER_TOPICS if before is None else before, only=NAMED_BY_THIS_WORKER if WORKER else None
        )


class _LogFile(logging.Handler):
    """This process's log records, formatted as the services format theirs, appended to a file."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.out.write(self.format(record) + "\n")
        except Exception:  # a log record must never fail a test; the scan reads what was written
            self.handleError(record)


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_logs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    base = tmp_path_factory.getbasetemp()
    os.environ["SWITCHBOARD_TEST_LOG_LEVEL"] = "DEBUG"  # every process tests/support/processes.py starts
    root = logging.getLogger()
    level = root.level
    with (base / "this-process.log").open("a", encoding="utf-8") as out:
        handler = _LogFile(out)
        root.addHandler(handler)
        # pytest keeps WARNING and above of each test (log_level in pyproject.toml); DEBUG goes to the file only
        root.setLevel(logging.DEBUG)
        for noisy in NOISY:  # as the services configure them (shared/logging.py)
            logging.getLogger(noisy).setLevel(logging.WARNING)
        try:
            yield
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
            del os.environ["SWITCHBOARD_TEST_LOG_LEVEL"]
    scanned, found = 0, {}
    for path in sorted(base.rglob("*.log")):
        text = path.read_text(errors="replace")
        scanned += len(text)
        if hits := leaks(text):
            found[str(path.relative_to(base))] = sorted(set(hits))[:10]
    if any("tests/e2e/" in item.nodeid for item in request.session.items):
        assert scanned > 1_000, "the services did log (at DEBUG)"
    assert found == {}, f"personal data in logs: {found}"


# The pytest-xdist worker this process is ("gw0", ...), as a letter that is no hex digit ("g" for gw0), or ""
# in a run without workers. Every random name carries it in place of a hex digit (the same length either
# way), so a worker deletes only the topics its own tests created (tests/support/topics.py).
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_TAG = "ghijklmnopqrstuvwxyz"[int(WORKER.removeprefix("gw")) % 20] if WORKER else ""
NAMED_BY_THIS_WORKER = re.compile(f"{WORKER_TAG}[0-9a-f]{{{10 - len(WORKER_TAG)}}}(?![0-9a-z])")


def random_name(prefix: str) -> str:
    """Random ids keep tests apart on shared servers, so no table ever needs truncating."""
    return f"{prefix}{WORKER_TAG}{uuid.uuid4().hex[: 10 - len(WORKER_TAG)]}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite stops and restarts the shared servers: it runs last, so no other test meets a restart
    (``make test`` runs it on its own, after the rest). Run by pytest-xdist workers, the e2e suite goes first:
    its files are the longest, and a long file started last keeps one worker busy while the other idles."""
    first = -1 if WORKER else 1

    def phase(item: pytest.Item) -> int:
        node = item.nodeid.replace("\\", "/")
        return 2 if "tests/faults/" in node else first if "tests/e2e/" in node else 0

    items.sort(key=phase)
