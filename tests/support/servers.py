"""Start or reuse the real servers outside pytest (benchmarks, fault suite): the same script as `make test`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def ensure_servers() -> tuple[str, str]:
    """(database url, kafka bootstrap): from the environment, else started or reused by services.sh."""
    db = os.environ.get("SWITCHBOARD_DATABASE_URL", "")
    kafka = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP", "")
    if db.startswith("postgresql") and kafka:
        return db, kafka
    out = subprocess.run([str(ROOT / "deploy/local/services.sh"), "up"], capture_output=True, text=True, check=True)
    env = dict(re.findall(r"^export (\w+)=(.*)$", out.stdout, re.M))
    return env["SWITCHBOARD_DATABASE_URL"], env["SWITCHBOARD_KAFKA_BOOTSTRAP"]


def exported_by_services_sh(command: str, what: str) -> dict[str, str]:
    """The variables ``deploy/local/services.sh command`` prints as ``export NAME=value`` once it has started
    ``what`` (or found it running); fails the test, never skips it, with the script's error when it cannot."""
    script = str(ROOT / "deploy/local/services.sh")
    proc = subprocess.run([script, command], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} could not be started by deploy/local/services.sh {command} "
            f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}",
            pytrace=False,
        )
    return dict(re.findall(r"^export (\w+)=(.*)$", proc.stdout, re.M))
