"""A progress bar on stderr, redrawn in place at most ten times a second (a run calls it every few thousand
events; redrawing each time would cost more than the run)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
EVERY_S = 0.1


class ProgressBar:
    def __init__(self, label: str, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.label = label
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self._drawn = -1.0
        self._started = time.monotonic()

    def __call__(self, fraction: float) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._drawn < EVERY_S and fraction < 1.0):
            return
        self._drawn = now
        done = max(0, min(WIDTH, round(fraction * WIDTH)))
        bar = "#" * done + "." * (WIDTH - done)
        self.stream.write(f"\r{self.label:<22} [{bar}] {fraction:4.0%}  {now - self._started:5.1f}s")
        if fraction >= 1.0:
            self.stream.write("\n")
        self.stream.flush()
