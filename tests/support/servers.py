"""Start or reuse the real servers outside pytest (benchmarks, fault suite): the same script as `make test`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

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
