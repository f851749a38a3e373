"""Alert rules, dashboards and data-source queries use only metrics from docs/metrics.md.

Prometheus names are mapped back to the OTel names of the contract the way the collector's
`prometheusremotewrite` exporter (add_metric_suffixes: false) and the processor's own scrape
endpoint write them: '.' -> '_', and histograms add `_bucket` / `_sum` / `_count`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
METRICS_DOC = ROOT / "docs" / "metrics.md"
# The processor metrics issues 3, 4 and 13 named: the dashboards must show each of them.
ISSUE_METRICS = {
    "gensight.calls", "gensight.call.duration", "gensight.tokens", "gensight.cost", "gensight.sli.availability",
    "gensight.sli.latency", "gensight.sli.cost_per_call", "gensight.sli.relevance", "gensight.sli.cache_hit_ratio",
    "gensight.processor.spans", "gensight.slo.burn_rate", "gensight.slo.error_budget.remaining", "gensight.drift",
    "gensight.drift.score", "gensight.anomaly.score", "gensight.cost.rate", "gensight.budget.used",
    "gensight.alerts.active",
    # issue 13 (quality)
    "gensight.evaluations", "gensight.sli.quality", "gensight.sli.quality_pass_ratio", "gensight.processor.evaluations",
}
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.rules.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "by", "without", "on", "ignoring", "group_left",
                   "group_right", "offset", "inf", "nan"}


class Metric(NamedTuple):
    name: str
    type: str


METRIC_TYPE = re.compile(r"\b(sum|gauge|histogram|counter|updowncounter|summary)\b", re.I)


def contract_from_markdown(text: str) -> dict[str, Metric]:
    """Metric rows of the markdown tables: first cell a backticked dotted name, second its type
    (rows of attribute tables, whose second cell is no metric type, are not metrics)."""
    metrics: dict[str, Metric] = {}
    for line in text.splitlines():
        if not line.lstrip().startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)`", cells[0])
        if m and len(cells) > 1 and METRIC_TYPE.search(cells[1]):
            metrics[m.group(1)] = Metric(m.group(1), cells[1].lower())
    return metrics


def load_contract() -> dict[str, Metric]:
    """docs/metrics.md, the source of truth."""
    return contract_from_markdown(METRICS_DOC.read_text())


def prometheus_names(contract: dict[str, Metric]) -> dict[str, str]:
    """Prometheus name -> OTel name, for every name Prometheus can hold for the contract."""
    out = {}
    for name, metric in contract.items():
        base = name.replace(".", "_")
        out[base] = name
        if "histogram" in metric.type:
            for suffix in HISTOGRAM_SUFFIXES:
                out[base + suffix] = name
    return out


def promql_metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression (or Grafana `label_values(...)` query) selects."""
    s = re.sub(r"\$\$?\{[^}]*\}|\$\$?\w+", " ", expr)                 # Grafana variables
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", s)  # string literals
    s = re.sub(r"\{[^}]*\}", " ", s)                                   # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)                                  # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    s = re.sub(r"\boffset\s+-?\w+|@\s*[\w.()]+", " ", s)
    s = re.sub(r"\blabel_values\(\s*([A-Za-z_:][\w:]*)?\s*,\s*\w+\s*\)", r" \1 ", s)
    s = re.sub(r"\blabel_values\(\s*\w+\s*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)\b(?!\s*\()", s):
        token = m.group(1)
        if token.lower() not in PROMQL_KEYWORDS and not re.fullmatch(r"\d.*", token):
            names.add(token)
    return names


def _walk_strings(node: Any, key: str) -> list[str]:
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key and isinstance(v, str):
                out.append(v)
            else:
                out += _walk_strings(v, key)
    elif isinstance(node, list):
        for v in node:
            out += _walk_strings(v, key)
    return out


def rule_exprs() -> list[str]:
    return [r["expr"] for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """PromQL of every Prometheus target and template variable of a dashboard."""
    queries = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            if target.get("datasource", panel.get("datasource", {})).get("type") == "prometheus":
                queries.append(target["expr"])
    for var in dashboard["templating"]["list"]:
        if var.get("type") == "query" and var["datasource"]["type"] == "prometheus":
            q = var["query"]
            queries.append(q["query"] if isinstance(q, dict) else q)
    return queries


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in panels:
        out.append(p)
        out += _panels(p.get("panels", []))
    return out


def unknown_names(queries: list[str], contract: dict[str, Metric]) -> dict[str, set[str]]:
    known = prometheus_names(contract)
    bad = {}
    for q in queries:
        names = promql_metric_names(q)
        missing = {n for n in names if n not in known}
        if missing:
            bad[q] = missing
    return bad


@pytest.fixture(scope="module")
def contract() -> dict[str, Metric]:
    return load_contract()


# -- the extractor and the mapping themselves -------------------------------------------------

@pytest.mark.parametrize("expr, names", [
    ('sum by (service_name) (rate(gensight_calls{outcome="error"}[5m]))', {"gensight_calls"}),
    ("histogram_quantile(0.95, sum by (le) (rate(gensight_call_duration_bucket[$__rate_interval])))",
     {"gensight_call_duration_bucket"}),
    ('max without (window) (gensight_slo_burn_rate{window="1h"}) > 14.4 and max without (window) '
     '(gensight_slo_burn_rate{window="5m"}) > 14.4', {"gensight_slo_burn_rate"}),
    ("gensight_cost_rate >= 2 * avg_over_time(gensight_cost_rate[1h] offset 5m) and gensight_cost_rate > 0.01",
     {"gensight_cost_rate"}),
    ('label_values(gensight_calls{service_name=~"$service"}, gen_ai_request_model)', {"gensight_calls"}),
    ("label_values(service_name)", set()),
    ("sum(gensight_alerts_active) or vector(0)", {"gensight_alerts_active"}),
    ('up{job="x"} / on (instance) group_left (version) build_info', {"up", "build_info"}),
    ("rate(gensight_calls{$$__tags}[5m]) * 1e-3", {"gensight_calls"}),
])
def test_promql_metric_names_finds_selected_metrics(expr, names):
    assert promql_metric_names(expr) == names


def test_contract_parser_reads_names_and_types_from_tables():
    text = ("| name | type |\n|---|---|\n| `gensight.call.duration` | Histogram | `s` |\n| `outcome` | label |\n"
            "| `gen_ai.request.model` | model calls |\nprose `gensight.x`\n")
    assert contract_from_markdown(text) == {"gensight.call.duration": Metric("gensight.call.duration", "histogram")}


def test_prometheus_names_map_back_only_histograms_with_suffixes():
    contract = {"gensight.call.duration": Metric("gensight.call.duration", "histogram"),
                "gensight.calls": Metric("gensight.calls", "sum (monotonic)")}
    names = prometheus_names(contract)
    assert names["gensight_call_duration_bucket"] == "gensight.call.duration"
    assert names["gensight_calls"] == "gensight.calls"
    assert "gensight_calls_count" not in names


def test_query_with_a_metric_outside_the_contract_is_reported():
    contract = {"gensight.calls": Metric("gensight.calls", "sum")}
    bad = unknown_names(["sum(rate(gensight_calls[5m])) / sum(rate(gensight_call_total[5m]))"], contract)
    assert list(bad.values()) == [{"gensight_call_total"}]


# -- the deployment files against the contract ---------------------------------------------------

def test_docs_metrics_lists_every_metric_the_issues_named(contract):
    assert ISSUE_METRICS - set(contract) == set()
    assert contract["gensight.call.duration"].type.startswith("histogram")


def test_alert_rules_use_only_contract_metrics(contract):
    exprs = rule_exprs()
    assert exprs
    assert unknown_names(exprs, contract) == {}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_use_only_contract_metrics(path, contract):
    queries = dashboard_queries(json.loads(path.read_text()))
    assert queries
    assert unknown_names(queries, contract) == {}


def test_datasource_provisioning_queries_use_only_contract_metrics(contract):
    queries = _walk_strings(yaml.safe_load(DATASOURCES.read_text()), "query")
    assert queries
    assert unknown_names(queries, contract) == {}


def test_every_metric_of_the_issue_contract_is_on_some_dashboard(contract):
    """Each processor metric named in the issues appears on at least one dashboard.

    (Metrics added to docs/metrics.md later are not required here, so adding one does not
    break this test; add a panel for it all the same.)"""
    shown = set()
    known = prometheus_names(contract)
    for path in DASHBOARDS:
        for q in dashboard_queries(json.loads(path.read_text())):
            shown |= {known[n] for n in promql_metric_names(q) if n in known}
    missing = {n for n in ISSUE_METRICS if n not in shown}
    assert missing == set()
