"""Structured JSON logs: one object a line, event name plus ids, never message bodies or contact details."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import orjson

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


# Defence in depth: whatever a library or an exception message puts in a log line, these never reach the log.
_SCRUB = (
    (re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+"), "[email]"),
    (re.compile(r"\+\d[\d ().-]{6,}\d"), "[phone]"),  # E.164, as Switchboard stores numbers
    (re.compile(r"(?i)\b(bearer|token|secret|password|key)([=: ]+)[^\s,;&\"']+"), r"\1\2[redacted]"),
    (re.compile(r"/bot\d+:[\w-]+"), "/bot[redacted]"),
    (re.compile(r"\bsb_[\w-]{8,}"), "sb_[redacted]"),
)


def scrub(text: str) -> str:
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return scrub(orjson.dumps(out, default=str).decode())


NOISY = (
    "aiokafka",
    "kafka",
    "uvicorn.access",
    "httpx",
    "httpcore",
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
    "hpack",
    "multipart",
    "websockets",
    "aiosmtpd",
    "mail.log",
    "aioimaplib",
    "twilio",
)


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Capped at WARNING whatever the level: httpx logs every request URL at INFO (provider URLs carry tokens,
    # e.g. Telegram's /bot<token>/); database drivers and HTTP internals log statements, parameters and
    # payloads (customers' messages) at DEBUG.
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
