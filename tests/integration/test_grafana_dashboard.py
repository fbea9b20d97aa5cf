"""The Grafana dashboard in deploy/ charts series that exist: every metric its queries name is one a running
router exposes at /metrics (connectors' series included: they register in the same module), and every panel
reads the dashboard's Prometheus data source."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.support.runtime import admin_client, settings_for, started_desk

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "switchboard.json"


async def test_every_series_the_dashboard_charts_is_exposed(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\bswitchboard_[a-z_]+", target["expr"])
    }
    async with started_desk(settings_for("embedded", tmp_path)) as desk, admin_client(desk) as api:
        exposition = (await api.get("/metrics")).text
    exposed = {re.sub(r"_total$", "", family.name) for family in text_string_to_metric_families(exposition)}
    assert len(queried) >= 10
    assert queried <= exposed, f"charted but not exposed: {sorted(queried - exposed)}"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}" and panel["targets"], panel["title"]
