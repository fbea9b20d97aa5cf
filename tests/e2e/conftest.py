"""The log capture over the whole e2e suite: every service process runs at DEBUG and writes its log under this
session's temporary directory, and this process's own log records are kept; when the last e2e test is done,
none of it may hold a test customer's email, phone or message text (tests/support/pii.py)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest

from shared.logging import NOISY, JsonFormatter
from tests.support.browser import browser, chromium  # noqa: F401 (the browser tests' fixtures)
from tests.support.pii import leaks


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_logs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    os.environ["SWITCHBOARD_TEST_LOG_LEVEL"] = "DEBUG"
    keep = _Keep()
    root = logging.getLogger()
    level = root.level
    root.addHandler(keep)
    root.setLevel(logging.DEBUG)
    for noisy in NOISY:  # as the services configure them (shared/logging.py)
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.removeHandler(keep)
        root.setLevel(level)
        del os.environ["SWITCHBOARD_TEST_LOG_LEVEL"]
    logs = {"(this process)": "\n".join(keep.lines)}
    for path in tmp_path_factory.getbasetemp().rglob("*.log"):
        logs[str(path)] = path.read_text(errors="replace")
    assert sum(len(text) for text in logs.values()) > 10_000, "the services did log (at DEBUG)"
    found = {name: sorted(set(leaks(text)))[:10] for name, text in logs.items() if leaks(text)}
    assert found == {}, f"personal data in logs: {found}"
