"""`switchboard --version` and the demo desk's banner."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path

import pytest

from services.cli import _banner, main, run_async
from shared.settings import Settings


def test_version_prints_the_installed_version_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"switchboard {version('switchboard')}"


def test_the_banner_lists_the_console_the_demo_page_and_the_api_docs() -> None:
    settings = Settings(_env_file=None, http_port=8123)
    banner = _banner(settings, "sb_example", Path(".local/bootstrap-key"))
    for url in ("/console", "/demo", "/docs"):
        assert f"http://127.0.0.1:8123{url} " in banner
    assert "export KEY=sb_example" in banner and ".local/bootstrap-key" in banner and "--reset" in banner


def test_a_key_from_the_environment_is_not_printed() -> None:
    settings = Settings(_env_file=None, bootstrap_api_key="sb_from-the-environment")
    banner = _banner(settings, "sb_from-the-environment", None)
    assert "sb_from-the-environment" not in banner and "<SWITCHBOARD_BOOTSTRAP_API_KEY>" in banner


def test_the_services_run_on_uvloop() -> None:
    async def loop_module() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert run_async(loop_module()).startswith("uvloop")
