"""Chromium for the browser tests (Debian's package driven by Playwright): where it is, the flags it runs with
on a closed network and where screenshots go. tests/e2e/conftest.py offers its fixtures to the e2e suite."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.processes import ROOT

CHROMIUM = os.environ.get("SWITCHBOARD_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SWITCHBOARD_TEST_ARTIFACTS", ROOT / ".local" / "artifacts"))
# Flags for a closed network: no background calls home that the machine would refuse.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> str:
    assert os.path.exists(CHROMIUM), f"Chromium is needed at {CHROMIUM} (deploy/local/tools.sh installs it)"
    return CHROMIUM


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        try:
            yield b
        finally:
            await b.close()
