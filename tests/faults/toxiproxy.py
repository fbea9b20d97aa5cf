"""Network faults by Toxiproxy (github.com/Shopify/toxiproxy), the TCP proxy made for this: latency, bandwidth,
resets and silent partitions ("toxics") on a proxy, switched on and off through its REST API.

The server is built from the Go module proxy once (``go install``, about 10 s; cached in .local/bin) and run as
a process of the fault run's own; this module drives it with httpx."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.support.processes import ROOT
from tests.support.runtime import free_port

MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server"
VERSION = "v2.12.0"
BINARY = ROOT / ".local" / "bin" / f"toxiproxy-server-{VERSION}"

Stream = Literal["upstream", "downstream"]
BOTH: tuple[Stream, ...] = ("upstream", "downstream")


def binary() -> Path:
    """The toxiproxy server, built once with this machine's Go toolchain (a missing toolchain fails the run: the
    network faults are never quietly left out)."""
    if BINARY.exists():
        return BINARY
    go = shutil.which("go")
    if go is None:
        raise AssertionError("the fault suite's network faults need Go (`go install` builds Toxiproxy); none found")
    with tempfile.TemporaryDirectory(prefix="toxiproxy-") as gobin:
        env = {**os.environ, "GOBIN": gobin, "GOFLAGS": "-modcacherw"}
        done = subprocess.run(
            [go, "install", f"{MODULE}@{VERSION}"], env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise AssertionError(f"go install {MODULE}@{VERSION} failed:\n{done.stderr[-3000:]}")
        BINARY.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(Path(gobin) / "server", BINARY)
    return BINARY


class Toxiproxy:
    """One toxiproxy server; ``proxy`` opens a listening port in front of an upstream."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}"
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self._http = httpx.Client(base_url=self.api, timeout=10)

    def start(self) -> None:
        with self._log.open("ab") as out:
            self._proc = subprocess.Popen(
                [str(binary()), "-host", "127.0.0.1", "-port", str(self.port)], stdout=out, stderr=subprocess.STDOUT
            )
        atexit.register(self.stop)  # a run that fails half-way does not leave the proxies' ports taken
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise AssertionError(f"toxiproxy exited with {self._proc.returncode}: {self._log.read_text()[-2000:]}")
            try:
                self._http.get("/version").raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("toxiproxy did not answer within 30 s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(10)
        self._http.close()

    def proxy(self, name: str, upstream: str, listen_port: int | None = None) -> int:
        """A proxy listening on ``listen_port`` (a free one if not given) in front of ``upstream`` (host:port);
        returns the port it listens on."""
        port = listen_port or free_port()
        self._call("POST", "/proxies", {"name": name, "listen": f"127.0.0.1:{port}", "upstream": upstream})
        return port

    def add(self, proxy: str, name: str, kind: str, streams: tuple[Stream, ...] = BOTH, **attributes: Any) -> None:
        """The toxic ``kind`` (latency, bandwidth, reset_peer, timeout, …) on each of ``streams`` (upstream: from
        the client to the server)."""
        for stream in streams:
            body = {"name": f"{name}-{stream}", "type": kind, "stream": stream, "toxicity": 1.0}
            self._call("POST", f"/proxies/{proxy}/toxics", body | {"attributes": attributes})

    def remove(self, proxy: str, name: str, streams: tuple[Stream, ...] = BOTH) -> None:
        for stream in streams:
            self._call("DELETE", f"/proxies/{proxy}/toxics/{name}-{stream}")

    def cut_connections(self, proxy: str) -> None:
        """Every open connection through ``proxy`` closed (disabled, then enabled again)."""
        self._call("POST", f"/proxies/{proxy}", {"enabled": False})
        self._call("POST", f"/proxies/{proxy}", {"enabled": True})

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> None:
        r = self._http.request(method, path, json=body)
        if r.status_code >= 300:
            raise AssertionError(f"toxiproxy {method} {path}: {r.status_code} {r.text[:300]}")
