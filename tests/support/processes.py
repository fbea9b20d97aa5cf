"""Running Switchboard as real processes, the way operators do, for crash and e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.runtime import free_port

ROOT = Path(__file__).resolve().parents[2]
SWITCHBOARD = str(Path(sys.executable).with_name("switchboard"))


def clean_env(**settings: str) -> dict[str, str]:
    """The parent's environment without any SWITCHBOARD_* setting, plus exactly the given ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    if "SWITCHBOARD_TEST_LOG_LEVEL" in os.environ and "log_level" not in settings:
        env["SWITCHBOARD_LOG_LEVEL"] = os.environ["SWITCHBOARD_TEST_LOG_LEVEL"]  # the e2e log capture: all of it
    env.update({f"SWITCHBOARD_{k.upper()}": v for k, v in settings.items()})
    return env


def start(args: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or ROOT)


def wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not ready within {timeout_s}s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes], grace_s: float = 30) -> int:
    """SIGTERM, as an orchestrator does; returns the exit code (fails if it needs SIGKILL)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"did not exit within {grace_s}s of SIGTERM") from None
    return proc.returncode


def router_env(
    database_url: str, kafka_bootstrap: str, topic_prefix: str, port: int, *, batch: int = 20, group: str | None = None
) -> dict[str, str]:
    """The environment of a `switchboard router` process on the real servers, isolated by topic prefix."""
    import uuid

    return clean_env(
        database_url=database_url,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        consumer_group=group or f"g-{uuid.uuid4().hex[:10]}",
        kafka_partitions="4",
        consumer_batch_max=str(batch),
        http_port=str(port),
        log_level="WARNING",
    )


def start_telegram_connector(kafka_bootstrap: str, topic_prefix: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`switchboard connector telegram` alone on real Kafka, tenant "acme", secret token "tg-secret", ready."""
    env = clean_env(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        http_port=str(port),
        connector_tenant="acme",
        telegram_secret_token="tg-secret",
        kafka_partitions="4",
        log_level="WARNING",
    )
    proc = start([SWITCHBOARD, "connector", "telegram"], env, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, log)
    except AssertionError:
        proc.kill()
        raise
    return proc


@contextmanager
def make_run(folder: Path, env: dict[str, str], log: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`make run` (``args`` as its ARGS) in ``folder``, its output added to ``log``; stopped after with SIGTERM to
    its whole process group (make and the switchboard it started), SIGKILL if it is not gone within 30 s."""
    command = ["make", "-s", "run"] + ([f"ARGS={' '.join(args)}"] if args else [])
    with log.open("ab") as out:
        proc = subprocess.Popen(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise


@contextmanager
def dev_desk(home: Path, key: str, **settings: str) -> Iterator[str]:
    """`switchboard dev` (every connector, the demo desk with ``key`` as its admin key; the embedded store and
    bus unless ``settings`` name a ``database_url`` / ``kafka_bootstrap``) on free ports, its files under
    ``home`` (log: ``home/dev.log``); yields its base URL once ready, and stops it with SIGTERM after."""
    port = free_port()
    settings = {"database_url": f"sqlite+aiosqlite:///{home / 'switchboard.db'}", **settings}
    env = clean_env(
        http_port=str(port),
        smtp_port=str(free_port()),
        bootstrap_api_key=key,
        blob_dir=str(home / "blobs"),
        **settings,
    )
    log = home / "dev.log"
    proc = start([SWITCHBOARD, "dev"], env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log, timeout_s=120)
        yield base
    finally:
        stop(proc)
