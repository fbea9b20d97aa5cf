"""The failure classification every consumer acts on: retry the batch (infrastructure) or isolate the record
(poison). The expected answers are written here, not read from the classifier."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, NodeNotReadyError
from sqlalchemy import exc as sa_exc

from shared.bus import BusUnavailable
from shared.events import InvalidEvent
from shared.failures import is_retriable, reason_kind, reason_of, sqlstate


class PgError(Exception):
    def __init__(self, message: str, sqlstate: str) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def pg(kind: type[sa_exc.DBAPIError], code: str, message: str = "server said no") -> sa_exc.DBAPIError:
    return kind("SELECT 1", {"p": "customer@example.com"}, PgError(message, code))


def pg_cases(kind: type[sa_exc.DBAPIError], meanings: dict[str, str]) -> list[tuple[str, BaseException]]:
    """A case per SQLSTATE of ``meanings`` (code → what it means), raised through the driver as ``kind``."""
    return [(f"pg {meaning} {code}", pg(kind, code)) for code, meaning in meanings.items()]


# SQLSTATEs worth retrying: the connection or the server (lost, starting, shutting down, full), or a conflict
# with another transaction.
PG_RETRIABLE = {
    "08006": "connection failure",
    "57P03": "cannot connect now",
    "57P01": "admin shutdown",
    "53300": "too many connections",
    "40001": "serialization failure",
    "40P01": "deadlock",
    "55P03": "lock not available",
}

RETRIABLE: list[tuple[str, BaseException]] = [
    ("bus unavailable", BusUnavailable("no broker")),
    ("connection refused", ConnectionRefusedError()),
    ("connection reset", ConnectionResetError()),
    ("timeout", TimeoutError()),
    ("socket error", OSError("network unreachable")),
    ("http transport", httpx.ConnectError("down")),
    ("kafka connection", KafkaConnectionError()),
    ("kafka node not ready", NodeNotReadyError()),
    *pg_cases(sa_exc.OperationalError, PG_RETRIABLE),
    ("driver error without sqlstate", sa_exc.InterfaceError("SELECT 1", {}, Exception("connection is closed"))),
    ("pool timeout", sa_exc.TimeoutError("QueuePool limit reached")),
    ("sqlite locked", sa_exc.OperationalError("x", {}, sqlite3.OperationalError("database is locked"))),
]

POISON: list[tuple[str, BaseException]] = [
    ("invalid event", InvalidEvent("not JSON")),
    ("pg NUL in text 22021", pg(sa_exc.DataError, "22021", 'invalid byte sequence for encoding "UTF8": 0x00')),
    *pg_cases(
        sa_exc.DataError, {"22008": "datetime out of range", "22P05": "NUL in jsonb", "22001": "string too long"}
    ),
    *pg_cases(sa_exc.IntegrityError, {"23505": "unique violation", "23503": "foreign key", "23514": "check"}),
    ("sqlite integrity", sa_exc.IntegrityError("x", {}, sqlite3.IntegrityError("NOT NULL constraint failed"))),
    ("sqlite no such table", sa_exc.OperationalError("x", {}, sqlite3.OperationalError("no such table: x"))),
    ("overflow (year 1 +14:00 to UTC)", OverflowError("date value out of range")),
    ("bug: type error", TypeError("'NoneType' object is not subscriptable")),
    ("bug: key error", KeyError("queue")),
    ("bug: value error", ValueError("naive datetime")),
    ("unicode", UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")),
    ("kafka message too large", MessageSizeTooLargeError()),
]


@pytest.mark.parametrize(("why", "exc"), RETRIABLE, ids=[w for w, _ in RETRIABLE])
def test_infrastructure_failures_are_retried(why: str, exc: BaseException) -> None:
    assert is_retriable(exc) is True


@pytest.mark.parametrize(("why", "exc"), POISON, ids=[w for w, _ in POISON])
def test_record_failures_are_isolated(why: str, exc: BaseException) -> None:
    assert is_retriable(exc) is False


def test_sqlstate_is_found_through_the_wrappers() -> None:
    inner = PgError("x", "22021")
    outer = RuntimeError("wrapped")
    outer.__cause__ = inner
    assert sqlstate(outer) == "22021"
    assert sqlstate(pg(sa_exc.DataError, "40001")) == "40001"
    assert sqlstate(ValueError("x")) is None


def test_the_reason_names_the_error_and_the_server_message_but_never_the_parameters() -> None:
    reason = reason_of(pg(sa_exc.DataError, "22021", 'invalid byte sequence for encoding "UTF8": 0x00\nDETAIL'))
    assert reason == 'DataError [22021]: invalid byte sequence for encoding "UTF8": 0x00'
    assert "customer@example.com" not in reason
    assert reason_of(OverflowError("date value out of range")) == "OverflowError: date value out of range"
    assert reason_of(KeyError()) == "KeyError"
    assert len(reason_of(ValueError("x" * 5000))) <= 500
    assert reason_kind(pg(sa_exc.IntegrityError, "23503")) == "IntegrityError"
