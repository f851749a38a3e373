"""Generate the Gensight Grafana dashboards (deploy/grafana/dashboards/*.json).

The dashboards are data, but four hand-edited JSON files drift apart quickly (ids, grid
positions, data source references, the same series selectors). This script is their source:
edit it, run ``python deploy/grafana/build_dashboards.py``, commit both. ``--check`` exits 1 when
a committed JSON file differs from what the script produces (tests/deploy runs it).

Every query uses only metric names from docs/metrics.md, in the Prometheus form the collector's
``prometheusremotewrite`` exporter writes with ``add_metric_suffixes: false``: the OTel name with
'.' -> '_' (``gensight.call.duration`` -> ``gensight_call_duration_bucket``), attribute keys the
same way (``gen_ai.request.model`` -> ``gen_ai_request_model``, resource ``service.name`` ->
``service_name``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

OUT_DIR = Path(__file__).resolve().parent / "dashboards"

PROM = {"type": "prometheus", "uid": "prometheus"}
TEMPO = {"type": "tempo", "uid": "tempo"}

# Series selectors shared by every panel; the template variables are defined per dashboard.
SEL = 'service_name=~"$service", gen_ai_request_model=~"$model"'
SVC = 'service_name=~"$service"'
# One Gensight series = service x operation x (model | tool | data source).
SERIES_BY = "service_name, gen_ai_operation_name, gen_ai_request_model, gen_ai_tool_name, gen_ai_data_source_id"
SERIES_LEGEND = "{{service_name}} {{gen_ai_operation_name}} {{gen_ai_request_model}}{{gen_ai_tool_name}}{{gen_ai_data_source_id}}"


def _tempo_explore_link(title: str, traceql: str) -> dict[str, Any]:
    """A data link opening Grafana Explore on Tempo with a TraceQL query for the clicked series.

    The tokens XSERVICEX/XFROMX/XTOX are replaced after URL-encoding so that Grafana can still
    interpolate its own ``${...}`` variables in the final URL.
    """
    panes = {
        "a": {
            "datasource": "tempo",
            "queries": [{"refId": "A", "datasource": TEMPO, "queryType": "traceql", "query": traceql, "limit": 20}],
            "range": {"from": "XFROMX", "to": "XTOX"},
        }
    }
    encoded = quote(json.dumps(panes, separators=(",", ":")), safe="")
    encoded = (
        encoded.replace("XSERVICEX", "${__field.labels.service_name:percentencode}")
        .replace("XFROMX", "${__from}")
        .replace("XTOX", "${__to}")
    )
    return {"title": title, "url": f"/explore?schemaVersion=1&orgId=1&panes={encoded}", "targetBlank": False}


TRACE_LINKS = [
    _tempo_explore_link(
        "LLM traces of ${__field.labels.service_name} in Tempo",
        '{resource.service.name="XSERVICEX" && span.gen_ai.operation.name != nil}',
    ),
    _tempo_explore_link(
        "Failed LLM traces of ${__field.labels.service_name} in Tempo",
        '{resource.service.name="XSERVICEX" && span.gen_ai.operation.name != nil && status = error}',
    ),
]


class Dashboard:
    """Accumulates panels on a 24-column grid, assigning unique ids and positions."""

    def __init__(self, uid: str, title: str, description: str, variables: list[dict[str, Any]]):
        self.uid, self.title, self.description, self.variables = uid, title, description, variables
        self.panels: list[dict[str, Any]] = []
        self._x = 0
        self._y = 0
        self._row_h = 0

    def add(self, panel: dict[str, Any], w: int, h: int) -> None:
        if self._x + w > 24:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"x": self._x, "y": self._y, "w": w, "h": h}
        self._x += w
        self._row_h = max(self._row_h, h)
        self.panels.append(panel)

    def row(self, title: str) -> None:
        if self._x:
            self._x, self._y, self._row_h = 0, self._y + self._row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self._x, self._y, self._row_h = 0, self._y + 1, 0

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": ["gensight"],
            "timezone": "browser",
            "editable": True,
            "graphTooltip": 1,
            "refresh": "30s",
            "schemaVersion": 41,
            "version": 1,
            "time": {"from": "now-1h", "to": "now"},
            "links": [
                {"title": "Gensight dashboards", "type": "dashboards", "tags": ["gensight"], "asDropdown": True,
                 "includeVars": True, "keepTime": True},
                {"title": "Jaeger", "type": "link", "url": "http://localhost:16686/search?service=${service}",
                 "targetBlank": True, "icon": "external link"},
            ],
            "templating": {"list": self.variables},
            "annotations": {"list": [{
                "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard",
            }]},
            "panels": self.panels,
        }


def _target(expr: str, legend: str = "", *, instant: bool = False, exemplar: bool = False, ref: str = "A") -> dict[str, Any]:
    target: dict[str, Any] = {"refId": ref, "datasource": PROM, "expr": expr, "legendFormat": legend or "__auto"}
    if instant:
        target.update({"instant": True, "range": False, "format": "table"})
    if exemplar:
        target["exemplar"] = True
    return target


def _thresholds(*steps: tuple[float, str]) -> dict[str, Any]:
    return {"mode": "absolute", "steps": [{"color": "green", "value": None}] + [
        {"color": color, "value": value} for value, color in steps
    ]}


def timeseries(title: str, targets: list[dict[str, Any]], *, unit: str = "short", description: str = "",
               thresholds: dict[str, Any] | None = None, links: list[dict[str, Any]] | None = None,
               stack: bool = False, decimals: int | None = None) -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                              "spanNulls": True}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    defaults: dict[str, Any] = {"unit": unit, "custom": custom}
    if decimals is not None:
        defaults["decimals"] = decimals
    if thresholds:
        defaults["thresholds"] = thresholds
        custom["thresholdsStyle"] = {"mode": "line+area"} if len(thresholds["steps"]) > 1 else {"mode": "off"}
    if links:
        defaults["links"] = links
    return {
        "type": "timeseries", "title": title, "description": description, "datasource": PROM, "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }


def stat(title: str, expr: str, *, unit: str = "short", description: str = "",
         thresholds: dict[str, Any] | None = None, decimals: int | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "thresholds": thresholds or _thresholds(), "color": {"mode": "thresholds"}}
    if decimals is not None:
        defaults["decimals"] = decimals
    return {
        "type": "stat", "title": title, "description": description, "datasource": PROM,
        "targets": [_target(expr)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto"},
    }


def bargauge(title: str, expr: str, legend: str, *, unit: str = "short", description: str = "",
             thresholds: dict[str, Any] | None = None, kind: str = "bargauge",
             minmax: tuple[float, float] | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "thresholds": thresholds or _thresholds(), "color": {"mode": "thresholds"}}
    if minmax:
        defaults["min"], defaults["max"] = minmax
    options: dict[str, Any] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    if kind == "bargauge":
        options.update({"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True})
    return {
        "type": kind, "title": title, "description": description, "datasource": PROM,
        "targets": [_target(expr, legend)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def table(title: str, expr: str, *, description: str = "", unit: str = "short") -> dict[str, Any]:
    return {
        "type": "table", "title": title, "description": description, "datasource": PROM,
        "targets": [_target(expr, instant=True)],
        "fieldConfig": {"defaults": {"unit": unit, "links": TRACE_LINKS}, "overrides": []},
        "transformations": [{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
        "options": {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
    }


def tempo_traces(title: str, traceql: str, *, description: str = "") -> dict[str, Any]:
    return {
        "type": "table", "title": title, "description": description, "datasource": TEMPO,
        "targets": [{"refId": "A", "datasource": TEMPO, "queryType": "traceql", "query": traceql,
                     "limit": 20, "tableType": "traces"}],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {"showHeader": True},
    }


def _query_var(name: str, label: str, query: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": PROM,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "sort": 1,
    }


SERVICE_VAR = _query_var("service", "Service", "label_values(gensight_calls, service_name)")
MODEL_VAR = _query_var("model", "Model", 'label_values(gensight_calls{service_name=~"$service"}, gen_ai_request_model)')
SLO_VAR = _query_var("slo", "SLO", "label_values(gensight_slo_burn_rate, slo)")

RATE = "$__rate_interval"


def overview() -> Dashboard:
    d = Dashboard("gensight-overview", "Gensight / Overview",
                  "Calls, errors, latency and cost of every LLM, tool and retrieval series, from the Gensight processor.",
                  [SERVICE_VAR, MODEL_VAR])
    d.add(stat("Calls / s", f"sum(rate(gensight_calls{{{SEL}}}[{RATE}]))", unit="reqps", decimals=2), 4, 4)
    d.add(stat("Error ratio", f'sum(rate(gensight_calls{{outcome="error", {SEL}}}[{RATE}])) / sum(rate(gensight_calls{{{SEL}}}[{RATE}]))',
               unit="percentunit", decimals=2, thresholds=_thresholds((0.01, "orange"), (0.05, "red"))), 4, 4)
    d.add(stat("p95 latency", f"histogram_quantile(0.95, sum by (le) (rate(gensight_call_duration_bucket{{{SEL}}}[{RATE}])))",
               unit="s", decimals=2, thresholds=_thresholds((5, "orange"), (15, "red"))), 4, 4)
    d.add(stat("Spend / hour", f"sum(rate(gensight_cost{{{SEL}}}[{RATE}])) * 3600", unit="currencyUSD", decimals=2), 4, 4)
    d.add(stat("Tokens / s", f"sum(rate(gensight_tokens{{{SEL}}}[{RATE}]))", unit="short", decimals=1), 4, 4)
    d.add(stat("Active Gensight alerts", f"sum(gensight_alerts_active{{{SVC}}}) or vector(0)",
               thresholds=_thresholds((1, "red"))), 4, 4)

    d.row("Traffic and errors")
    d.add(timeseries("Calls / s by service and outcome",
                     [_target(f"sum by (service_name, outcome) (rate(gensight_calls{{{SEL}}}[{RATE}]))", "{{service_name}} {{outcome}}")],
                     unit="reqps", stack=True, links=TRACE_LINKS), 12, 8)
    d.add(timeseries("Errors / s by error.type",
                     [_target(f'sum by (service_name, error_type) (rate(gensight_calls{{outcome="error", {SEL}}}[{RATE}]))',
                              "{{service_name}} {{error_type}}")],
                     unit="reqps", links=TRACE_LINKS), 12, 8)
    d.add(timeseries("Availability SLI per series (last window)",
                     [_target(f"min by ({SERIES_BY}) (gensight_sli_availability{{{SEL}}})", SERIES_LEGEND)],
                     unit="percentunit", decimals=3, links=TRACE_LINKS), 24, 8)

    d.row("Latency")
    d.add(timeseries(
        "Latency quantiles from gensight.call.duration (exemplars link to Tempo)",
        [_target(f"histogram_quantile({q}, sum by (le, service_name) (rate(gensight_call_duration_bucket{{{SEL}}}[{RATE}])))",
                 f"p{int(float(q) * 100)} {{{{service_name}}}}", exemplar=True, ref=ref)
         for q, ref in (("0.5", "A"), ("0.95", "B"), ("0.99", "C"))],
        unit="s", links=TRACE_LINKS), 12, 9)
    d.add(timeseries("Latency SLI per series (window quantiles, DDSketch)",
                     [_target(f"max by ({SERIES_BY}, quantile) (gensight_sli_latency{{{SEL}}})",
                              SERIES_LEGEND + " p{{quantile}}")],
                     unit="s", links=TRACE_LINKS), 12, 9)

    d.add(timeseries("Time to first chunk (streamed calls)",
                     [_target(f"max by ({SERIES_BY}) (gensight_sli_time_to_first_chunk{{{SEL}}})", SERIES_LEGEND)],
                     unit="s", links=TRACE_LINKS), 12, 8)
    d.add(timeseries("Tool success ratio",
                     [_target(f"min by ({SERIES_BY}) (gensight_sli_tool_success{{{SVC}}})", SERIES_LEGEND)],
                     unit="percentunit", decimals=3, links=TRACE_LINKS), 12, 8)

    d.row("Tokens and cost")
    d.add(timeseries("Tokens / s by model and type",
                     [_target(f"sum by (gen_ai_request_model, gen_ai_token_type) (rate(gensight_tokens{{{SEL}}}[{RATE}]))",
                              "{{gen_ai_request_model}} {{gen_ai_token_type}}")], stack=True), 12, 8)
    d.add(timeseries("Spend USD / hour by model",
                     [_target(f"sum by (gen_ai_request_model) (rate(gensight_cost{{{SEL}}}[{RATE}])) * 3600",
                              "{{gen_ai_request_model}}")], unit="currencyUSD", stack=True), 12, 8)

    _quality_row(d)

    d.row("Traces and pipeline")
    d.add(tempo_traces("Recent failed LLM calls (Tempo)",
                       '{resource.service.name=~"$service" && span.gen_ai.operation.name != nil && status = error}',
                       description="Click a trace id to open it in Tempo."), 12, 9)
    d.add(timeseries("Processor: spans / s by outcome",
                     [_target("sum by (service_name, outcome) (rate(gensight_processor_spans[$__rate_interval]))",
                              "{{service_name}} {{outcome}}")],
                     description="Self-telemetry of gensight serve: accepted, refused (queue full), late, dropped, skipped (non-GenAI).",
                     unit="short"), 12, 9)
    d.add(timeseries("Processor: live series and dropped values",
                     [_target("sum by (service_name) (gensight_processor_series)", "{{service_name}} series"),
                      _target("sum by (service_name) (rate(gensight_processor_values_dropped[$__rate_interval]))",
                              "{{service_name}} bad values / s", ref="B")],
                     description="Series in the cardinality registry (capped; the rest folds into the overflow series) "
                                 "and unusable attribute values (NaN, negative tokens ...) counted instead of used."), 12, 8)
    d.add(timeseries("Processor: evaluation results / s by outcome",
                     [_target("sum by (service_name, outcome) (rate(gensight_processor_evaluations[$__rate_interval]))",
                              "{{service_name}} {{outcome}}")],
                     description="gen_ai.evaluation.result records: joined to their call, late (window closed), unjoined "
                                 "(their call never came; under the evaluation's own service) or dropped (malformed, "
                                 "wait buffer full)."), 12, 8)
    return d


# Quality: one series = a Gensight series x gen_ai.evaluation.name.
QUALITY_BY = SERIES_BY + ", gen_ai_evaluation_name"
QUALITY_LEGEND = SERIES_LEGEND + " {{gen_ai_evaluation_name}}"


def _quality_row(d: Dashboard) -> None:
    """Evaluation results (LLM judges, guards, user feedback) joined to their calls."""
    d.row("Quality (evaluation results)")
    d.add(timeseries("Mean evaluation score per series (gensight.sli.quality)",
                     [_target(f"min by ({QUALITY_BY}) (gensight_sli_quality{{{SEL}}})", QUALITY_LEGEND)],
                     unit="percentunit", decimals=3, links=TRACE_LINKS,
                     description="Mean gen_ai.evaluation.score.value in the evaluation's own window. A slide of more "
                                 "than 2 %/h over 3 h raises quality_trending_down."), 12, 8)
    d.add(timeseries("Pass ratio per series (gensight.sli.quality_pass_ratio)",
                     [_target(f"min by ({QUALITY_BY}) (gensight_sli_quality_pass_ratio{{{SEL}}})", QUALITY_LEGEND)],
                     unit="percentunit", decimals=3, links=TRACE_LINKS,
                     description="passed / (passed + failed): a label in the pass list, else a score at or above the "
                                 "evaluation name's threshold."), 12, 8)
    d.add(timeseries("User feedback: positive ratio",
                     [_target(f'sum by (service_name) (rate(gensight_evaluations{{gen_ai_evaluation_name="user_feedback", '
                              f'outcome="pass", {SEL}}}[{RATE}])) / sum by (service_name) (rate(gensight_evaluations'
                              f'{{gen_ai_evaluation_name="user_feedback", outcome=~"pass|fail", {SEL}}}[{RATE}]))',
                              "{{service_name}}")],
                     unit="percentunit", decimals=3,
                     description="record_feedback(...) results: positive / (positive + negative)."), 12, 8)
    d.add(timeseries("Evaluations / s by name and outcome",
                     [_target(f"sum by (gen_ai_evaluation_name, outcome) (rate(gensight_evaluations{{{SEL}}}[{RATE}]))",
                              "{{gen_ai_evaluation_name}} {{outcome}}")], stack=True), 12, 8)


def cost() -> Dashboard:
    d = Dashboard("gensight-cost", "Gensight / Cost",
                  "Spend by model and service, cost per call, token mix, cache savings and monthly budgets.",
                  [SERVICE_VAR, MODEL_VAR])
    d.add(stat("Spend in range", f"sum(increase(gensight_cost{{{SEL}}}[$__range]))", unit="currencyUSD", decimals=2), 6, 4)
    d.add(stat("Spend rate now", f'sum(gensight_cost_rate{{tenant="", {SVC}}})', unit="currencyUSD", decimals=3,
               description="gensight.cost.rate, USD per minute (service totals; tenant points excluded)."), 6, 4)
    d.add(stat("Mean cost per call", f"avg(gensight_sli_cost_per_call{{{SEL}}})", unit="currencyUSD", decimals=5), 6, 4)
    d.add(stat("Budgets at or above 80 %", "count(gensight_budget_used >= 0.8) or vector(0)",
               thresholds=_thresholds((1, "orange"))), 6, 4)

    d.row("Where the money goes")
    d.add(timeseries("Spend rate by service (USD / min)",
                     [_target(f'sum by (service_name) (gensight_cost_rate{{tenant="", {SVC}}})', "{{service_name}}")],
                     unit="currencyUSD", stack=True, links=TRACE_LINKS), 12, 8)
    d.add(bargauge("Spend by model in range",
                   f"sort_desc(sum by (gen_ai_request_model) (increase(gensight_cost{{{SEL}}}[$__range])))",
                   "{{gen_ai_request_model}}", unit="currencyUSD"), 6, 8)
    d.add(bargauge("Spend by service in range",
                   f"sort_desc(sum by (service_name) (increase(gensight_cost{{{SEL}}}[$__range])))",
                   "{{service_name}}", unit="currencyUSD"), 6, 8)
    d.add(timeseries("Cost per call by series (last window)",
                     [_target(f"max by ({SERIES_BY}) (gensight_sli_cost_per_call{{{SEL}}})", SERIES_LEGEND)],
                     unit="currencyUSD", decimals=5, links=TRACE_LINKS), 12, 8)
    d.add(timeseries("Tokens / s by model and type",
                     [_target(f"sum by (gen_ai_request_model, gen_ai_token_type) (rate(gensight_tokens{{{SEL}}}[{RATE}]))",
                              "{{gen_ai_request_model}} {{gen_ai_token_type}}")], stack=True), 12, 8)

    d.row("Tenants (hashed ids; processor cost.per_tenant: true)")
    d.add(timeseries("Spend rate by tenant, top 10 (USD / min)",
                     [_target(f'topk(10, sum by (tenant) (gensight_cost_rate{{tenant!="", {SVC}}}))', "{{tenant}}")],
                     unit="currencyUSD",
                     description="Tenant ids are keyed hashes; tenants beyond the processor's max_tenants per service "
                                 "are folded into tenant=_overflow. Summed over services (and replicas)."), 12, 8)
    d.add(bargauge("Spend by tenant in range, top 10",
                   f'topk(10, sum by (tenant) (avg_over_time(gensight_cost_rate{{tenant!="", {SVC}}}[$__range])) * $__range_s / 60)',
                   "{{tenant}}", unit="currencyUSD",
                   description="Mean USD/min over the range times its length in minutes."), 12, 8)

    d.row("Budgets and cache")
    d.add(bargauge("Monthly budget used", "max by (budget) (gensight_budget_used)", "{{budget}}",
                   unit="percentunit", kind="gauge", minmax=(0, 1.2),
                   thresholds=_thresholds((0.8, "yellow"), (0.95, "orange"), (1, "red")),
                   description="gensight.budget.used per configured budget; alerts at 80 / 95 / 100 %."), 12, 8)
    d.add(timeseries("Prompt cache hit ratio by series",
                     [_target(f"max by ({SERIES_BY}) (gensight_sli_cache_hit_ratio{{{SEL}}})", SERIES_LEGEND)],
                     unit="percentunit"), 12, 8)
    return d


def slo() -> Dashboard:
    d = Dashboard("gensight-slo", "Gensight / SLOs",
                  "Multiwindow burn rates and error budgets of the SLOs configured in gensight serve.",
                  [SERVICE_VAR, SLO_VAR])
    sel = 'slo=~"$slo", service_name=~"$service"'
    d.add(bargauge("Error budget remaining", f"min by (slo) (gensight_slo_error_budget_remaining{{{sel}}})", "{{slo}}",
                   unit="percentunit", minmax=(0, 1),
                   thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "orange", "value": 0.25},
                                                             {"color": "green", "value": 0.5}]}), 12, 8)
    d.add(table("Burn rate by SLO and window (now)", f"max by (slo, service_name, window) (gensight_slo_burn_rate{{{sel}}})",
                description="Page: 1h and 5m > 14.4, or 6h and 30m > 6. Ticket: 3d and 6h > 1."), 12, 8)

    d.row("Burn rates (alert thresholds drawn)")
    for title, windows, limit in (("Fast burn: 1h and 5m (page > 14.4)", "5m|1h", 14.4),
                                  ("Slow burn: 6h and 30m (page > 6)", "30m|6h", 6.0),
                                  ("Budget drift: 3d and 6h (ticket > 1)", "6h|3d", 1.0)):
        d.add(timeseries(title, [_target(f'max by (slo, window) (gensight_slo_burn_rate{{window=~"{windows}", {sel}}})',
                                         "{{slo}} {{window}}")],
                         thresholds=_thresholds((limit, "red")), decimals=2), 8, 8)

    d.row("Budget and SLIs")
    d.add(timeseries("Error budget remaining over time",
                     [_target(f"min by (slo) (gensight_slo_error_budget_remaining{{{sel}}})", "{{slo}}")],
                     unit="percentunit"), 12, 8)
    d.add(timeseries("Active Gensight alerts",
                     [_target(f"sum by (alert, severity) (gensight_alerts_active{{{SVC}}})",
                              "{{alert}} ({{severity}})")],
                     description="gensight.alerts.active: the processor's own alert state machines."), 12, 8)
    d.add(timeseries("Availability SLI",
                     [_target(f"min by ({SERIES_BY}) (gensight_sli_availability{{{SVC}}})", SERIES_LEGEND)],
                     unit="percentunit", decimals=3, links=TRACE_LINKS), 12, 8)
    d.add(timeseries("p99 latency SLI",
                     [_target(f'max by ({SERIES_BY}) (gensight_sli_latency{{quantile="0.99", {SVC}}})', SERIES_LEGEND)],
                     unit="s", links=TRACE_LINKS), 12, 8)

    d.row("Quality SLOs and trends")
    d.add(timeseries("Quality SLO burn: 1h and 5m (page > 14.4)",
                     [_target('max by (slo, window) (gensight_slo_burn_rate{window=~"5m|1h", slo=~".*quality.*", '
                              'service_name=~"$service"})', "{{slo}} {{window}}")],
                     thresholds=_thresholds((14.4, "red")), decimals=2,
                     description="SLOs of type quality (good = the named evaluation passes), by the convention that "
                                 "their name contains 'quality' (docs/analytics.md)."), 12, 8)
    d.add(timeseries("Trend alerts (quality_trending_down, cost_per_call_trending_up)",
                     [_target(f'sum by (alert, service_name) (gensight_alerts_active{{alert=~"quality_trending_down|'
                              f'cost_per_call_trending_up", {SVC}}})', "{{alert}} {{service_name}}")],
                     description="Theil-Sen slope beyond 2 %/h over 3 h with Mann-Kendall p < 5e-4 "
                                 "(docs/analytics.md, Trends)."), 12, 8)
    return d


def drift_anomaly() -> Dashboard:
    d = Dashboard("gensight-drift-anomaly", "Gensight / Drift & Anomaly",
                  "Per-series drift against frozen reference bins, and window anomaly scores.",
                  [SERVICE_VAR, MODEL_VAR])
    d.add(timeseries("Anomaly score per series (alert >= 0.7)",
                     [_target(f"max by ({SERIES_BY}) (gensight_anomaly_score{{{SEL}}})", SERIES_LEGEND)],
                     thresholds=_thresholds((0.7, "red")), decimals=2, links=TRACE_LINKS), 12, 9)
    d.add(timeseries("Composite drift score per series",
                     [_target(f"max by ({SERIES_BY}) (gensight_drift_score{{{SEL}}})", SERIES_LEGEND)],
                     thresholds=_thresholds((0.5, "orange")), decimals=2, links=TRACE_LINKS), 12, 9)

    d.row("Drift by feature and method")
    for title, method, steps in (("PSI by feature (0.1 moderate, 0.2 major)", "psi", ((0.1, "orange"), (0.2, "red"))),
                                 ("KS statistic by feature", "ks", ()),
                                 ("Normalised Wasserstein by feature", "wasserstein", ((0.1, "orange"),)),
                                 ("Jensen-Shannon (categorical mixes)", "js", ((0.1, "orange"),))):
        d.add(timeseries(title, [_target(f'max by (service_name, gen_ai_request_model, gen_ai_tool_name, gen_ai_data_source_id, feature) '
                                         f'(gensight_drift{{method="{method}", {SEL}}})',
                                         "{{service_name}} {{gen_ai_request_model}}{{gen_ai_tool_name}}{{gen_ai_data_source_id}} {{feature}}")],
                         thresholds=_thresholds(*steps) if steps else None, decimals=3), 12, 8)

    d.row("What moved")
    d.add(table("Top drifting features now (PSI)",
                f'topk(10, max by (service_name, gen_ai_request_model, gen_ai_tool_name, gen_ai_data_source_id, feature) '
                f'(gensight_drift{{method="psi", {SEL}}}))'), 12, 8)
    d.add(timeseries("Retrieval relevance (mean top score)",
                     [_target(f"max by ({SERIES_BY}) (gensight_sli_relevance{{{SVC}}})", SERIES_LEGEND)],
                     unit="percentunit", decimals=3, links=TRACE_LINKS), 12, 8)
    d.add(timeseries("p95 latency SLI (context for anomalies)",
                     [_target(f'max by ({SERIES_BY}) (gensight_sli_latency{{quantile="0.95", {SEL}}})', SERIES_LEGEND)],
                     unit="s", links=TRACE_LINKS), 12, 8)
    d.add(timeseries("Cost per call (context for anomalies)",
                     [_target(f"max by ({SERIES_BY}) (gensight_sli_cost_per_call{{{SEL}}})", SERIES_LEGEND)],
                     unit="currencyUSD", decimals=5), 12, 8)
    return d


BUILDERS = {
    "gensight-overview.json": overview,
    "gensight-cost.json": cost,
    "gensight-slo.json": slo,
    "gensight-drift-anomaly.json": drift_anomaly,
}


def render() -> dict[str, str]:
    """File name -> JSON text, exactly as committed."""
    return {name: json.dumps(build().to_json(), indent=2) + "\n" for name, build in BUILDERS.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are out of date")
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = args.out_dir / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run python deploy/grafana/build_dashboards.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
