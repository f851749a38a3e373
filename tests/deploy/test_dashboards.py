"""Grafana dashboards and provisioning: valid JSON, unique panel ids, data sources that exist,
and committed JSON equal to what deploy/grafana/build_dashboards.py generates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "datasources.yaml"
EXPECTED_TITLES = {"Gensight / Overview", "Gensight / Cost", "Gensight / SLOs", "Gensight / Drift & Anomaly"}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out += _panels(p.get("panels", []))
    return out


def _datasource_refs(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        ds = node.get("datasource")
        if isinstance(ds, dict) and "uid" in ds:
            out.append(ds)
        for v in node.values():
            out += _datasource_refs(v)
    elif isinstance(node, list):
        for v in node:
            out += _datasource_refs(v)
    return out


def provisioned_datasources() -> dict[str, str]:
    """uid -> type of the provisioned data sources."""
    return {d["uid"]: d["type"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}


def test_the_four_dashboards_exist():
    assert {_load(p)["title"] for p in DASHBOARDS} == EXPECTED_TITLES


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_json_with_unique_panel_ids(path):
    dashboard = _load(path)
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert ids and len(ids) == len(set(ids))
    assert all(isinstance(i, int) for i in ids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_panels_stay_on_the_grid_without_overlap(path):
    cells: set[tuple[int, int]] = set()
    for p in _panels(_load(path)["panels"]):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps another panel"
                cells.add((x, y))


def test_dashboard_uids_are_unique():
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_refers_only_to_provisioned_datasources(path):
    provisioned = provisioned_datasources()
    for ref in _datasource_refs(_load(path)):
        if ref["uid"].startswith("-- "):  # Grafana built-ins (annotations)
            continue
        assert provisioned.get(ref["uid"]) == ref["type"], ref


def test_datasources_are_prometheus_tempo_and_jaeger_with_exemplars_to_tempo():
    provisioned = provisioned_datasources()
    assert sorted(provisioned.values()) == ["jaeger", "prometheus", "tempo"]
    prom = next(d for d in yaml.safe_load(DATASOURCES.read_text())["datasources"] if d["type"] == "prometheus")
    destinations = prom["jsonData"]["exemplarTraceIdDestinations"]
    assert {d["datasourceUid"] for d in destinations} == {"tempo"}


def test_datasource_urls_name_compose_services(compose):
    for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"]:
        host = ds["url"].split("://", 1)[1].split(":")[0]
        assert host in compose["services"], ds["name"]


def test_latency_panels_request_exemplars_for_trace_links():
    overview = _load(GRAFANA / "dashboards" / "gensight-overview.json")
    targets = [t for p in _panels(overview["panels"]) for t in p.get("targets", [])
               if "gensight_call_duration_bucket" in t.get("expr", "")]
    assert targets and any(t.get("exemplar") for t in targets)


def test_series_panels_link_to_traces_in_tempo():
    for path in DASHBOARDS:
        links = [link for p in _panels(_load(path)["panels"])
                 for link in p.get("fieldConfig", {}).get("defaults", {}).get("links", [])]
        assert any("tempo" in link["url"] for link in links), path.name


def test_dashboard_provider_path_is_where_compose_mounts_the_dashboards(compose):
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{path}:ro" in mounts


def test_committed_dashboards_match_the_generator():
    proc = subprocess.run([sys.executable, str(GRAFANA / "build_dashboards.py"), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_generator_check_reports_a_stale_file(tmp_path):
    (tmp_path / "gensight-overview.json").write_text("{}\n")
    proc = subprocess.run([sys.executable, str(GRAFANA / "build_dashboards.py"), "--check", "--out-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "gensight-overview.json" in proc.stderr
