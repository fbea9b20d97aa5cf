"""The simulation examples shipped in docs/examples/simulation/ (the README runs them) still load, run and show
what the README says of them, so they cannot rot as the desk's schema moves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.router.simulation import cli
from tests.support.simulation import simulate_args

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples" / "simulation"


def test_the_shipped_examples_run_and_the_proposal_raises_billings_sla(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [f"--{name}={EXAMPLES / f'{name}.json'}" for name in ("desk", "proposal", "traffic")]
    args = simulate_args(*files, "--out", str(tmp_path), "--no-plots", "--quiet", "--drain-h", "1")

    assert cli.run(args) == 0, capsys.readouterr().err

    results = json.loads((tmp_path / "report.json").read_text())
    assert results["baseline"]["total"]["arrived"] > 500, "a day's traffic, not an empty window"
    billing = results["comparison"]["queues"]["billing"]
    assert billing["sla_attainment"]["difference"] > 0.05, "overflow after 60 s and one more agent help billing"
    assert results["comparison"]["total"]["wait_p90_s"]["difference"] < 0


def test_the_readme_names_the_shipped_examples_and_the_plot() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## What if") :]
    section = section[: section.index("\n## ", 1)]
    for path in re.findall(r"docs/[\w./-]+\.(?:json|png|md)", section):
        assert (ROOT / path).is_file(), path
    assert "docs/examples/simulation/desk.json" in section and "docs/simulation-day.png" in section
    assert (ROOT / "docs" / "simulation-day.png").stat().st_size < 150_000
