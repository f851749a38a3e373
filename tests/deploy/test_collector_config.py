"""collector-config/*.yaml: every pipeline is wired to components that are defined.

The OpenTelemetry Collector itself cannot run here (no Docker, no installable otelcol-contrib),
so this reproduces the part of its start-up validation that catches most config mistakes:
pipelines naming undefined receivers/processors/exporters/extensions, and malformed
`${env:...}` references. It also checks the project's own rules for these files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = ROOT / "collector-config"
CONFIG_FILES = ["gateway.yaml", "loadbalancing.yaml"]
COLLECTOR_IMAGE = "otel/opentelemetry-collector-contrib:0.145.0"
ENV_REF = re.compile(r"\$\{([^}]*)\}")
ENV_REF_FORM = re.compile(r"env:[A-Z_][A-Z0-9_]*(:-.*)?")


def load(name: str) -> dict[str, Any]:
    with (CONFIG_DIR / name).open() as fh:
        return yaml.safe_load(fh)


def pipeline_errors(cfg: dict[str, Any]) -> list[str]:
    """What the collector would refuse at start-up about pipeline wiring, as messages."""
    errors: list[str] = []
    defined = {kind: set((cfg.get(kind) or {}).keys()) for kind in
               ("receivers", "processors", "exporters", "extensions", "connectors")}
    service = cfg.get("service") or {}
    for ext in service.get("extensions", []):
        if ext not in defined["extensions"]:
            errors.append(f"service.extensions: {ext!r} is not defined under extensions")
    pipelines = service.get("pipelines") or {}
    if not pipelines:
        errors.append("service.pipelines: no pipeline defined")
    for name, pipe in pipelines.items():
        signal = name.split("/", 1)[0]
        if signal not in ("traces", "metrics", "logs", "profiles"):
            errors.append(f"pipeline {name!r}: unknown signal {signal!r}")
        for kind, allowed in (("receivers", defined["receivers"] | defined["connectors"]),
                              ("processors", defined["processors"]),
                              ("exporters", defined["exporters"] | defined["connectors"])):
            ids = (pipe or {}).get(kind) or []
            if kind != "processors" and not ids:
                errors.append(f"pipeline {name!r}: no {kind}")
            for cid in ids:
                if cid not in allowed:
                    errors.append(f"pipeline {name!r}: {kind[:-1]} {cid!r} is not defined")
    return errors


def env_defaults(node: Any) -> list[str]:
    """Default values of every ${env:NAME:-default} reference in the config."""
    out: list[str] = []
    if isinstance(node, dict):
        for value in node.values():
            out += env_defaults(value)
    elif isinstance(node, list):
        for value in node:
            out += env_defaults(value)
    elif isinstance(node, str):
        for ref in ENV_REF.findall(node):
            if ":-" in ref:
                out.append(ref.split(":-", 1)[1])
    return out


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_every_pipeline_references_defined_components(name):
    assert pipeline_errors(load(name)) == []


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_env_references_use_the_collector_syntax(name):
    text = (CONFIG_DIR / name).read_text()
    refs = ENV_REF.findall(text)
    assert refs, "the configs take their endpoints from env vars with defaults"
    for ref in refs:
        assert ENV_REF_FORM.fullmatch(ref), f"malformed reference ${{{ref}}}"


def test_undefined_components_are_reported():
    cfg = {
        "receivers": {"otlp": {}},
        "exporters": {"debug": {}},
        "service": {"extensions": ["health_check"],
                    "pipelines": {"traces": {"receivers": ["otlp"], "processors": ["batch"], "exporters": ["otlp_grpc/x"]},
                                  "metrics": {"receivers": [], "exporters": ["debug"]}}},
    }
    errors = pipeline_errors(cfg)
    assert "service.extensions: 'health_check' is not defined under extensions" in errors
    assert "pipeline 'traces': processor 'batch' is not defined" in errors
    assert "pipeline 'traces': exporter 'otlp_grpc/x' is not defined" in errors
    assert "pipeline 'metrics': no receivers" in errors


def test_config_without_pipelines_is_reported():
    assert pipeline_errors({"receivers": {"otlp": {}}}) == ["service.pipelines: no pipeline defined"]


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_memory_limiter_runs_first_and_batch_after_it(name):
    for pipe_name, pipe in load(name)["service"]["pipelines"].items():
        procs = pipe["processors"]
        assert procs[0] == "memory_limiter", pipe_name
        assert "batch" in procs, pipe_name


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_remote_write_follows_the_prometheus_naming_contract(name):
    cfg = load(name)
    prw = cfg["exporters"]["prometheusremotewrite"]
    assert prw["add_metric_suffixes"] is False
    assert prw["resource_to_telemetry_conversion"]["enabled"] is True
    metrics = cfg["service"]["pipelines"]["metrics"]
    assert "prometheusremotewrite" in metrics["exporters"]
    # delta sums would be dropped by remote write: they must be made cumulative first
    assert "deltatocumulative" in metrics["processors"]


def test_gateway_fans_traces_out_to_jaeger_tempo_and_gensight():
    cfg = load("gateway.yaml")
    exporters = cfg["service"]["pipelines"]["traces"]["exporters"]
    endpoints = {e: cfg["exporters"][e]["endpoint"] for e in exporters}
    assert any("jaeger:4317" in v for v in endpoints.values())
    assert any("tempo:4317" in v for v in endpoints.values())
    assert any("processor:4317" in v for v in endpoints.values())


def test_gateway_sends_logs_to_the_processor_for_evaluation_results():
    cfg = load("gateway.yaml")
    logs = cfg["service"]["pipelines"]["logs"]["exporters"]
    assert any("processor:4317" in cfg["exporters"][e].get("endpoint", "") for e in logs)


def test_loadbalancing_routes_logs_by_service_like_the_spans():
    """Evaluation results must reach the replica that holds the calls they judge."""
    cfg = load("loadbalancing.yaml")
    pipelines = cfg["service"]["pipelines"]
    trace_lb = [e for e in pipelines["traces"]["exporters"] if e.split("/")[0] == "loadbalancing"]
    log_lb = [e for e in pipelines["logs"]["exporters"] if e.split("/")[0] == "loadbalancing"]
    assert log_lb == trace_lb and cfg["exporters"][log_lb[0]]["routing_key"] == "service"


def test_loadbalancing_routes_spans_by_service_to_the_processors():
    cfg = load("loadbalancing.yaml")
    traces = cfg["service"]["pipelines"]["traces"]["exporters"]
    lbs = [e for e in traces if e.split("/")[0] == "loadbalancing"]
    assert len(lbs) == 1
    lb = cfg["exporters"][lbs[0]]
    assert lb["routing_key"] == "service"
    assert "endpoint" not in lb["protocol"]["otlp"], "the resolver supplies the endpoints"
    assert len(lb["resolver"]) == 1, "the collector accepts exactly one resolver per exporter"
    assert len(lb["resolver"]["static"]["hostnames"]) == 2


def test_loadbalancing_has_a_dns_resolver_example_routed_by_service():
    cfg = load("loadbalancing.yaml")
    dns = [v for k, v in cfg["exporters"].items() if k.split("/")[0] == "loadbalancing" and "dns" in v["resolver"]]
    assert len(dns) == 1
    assert dns[0]["routing_key"] == "service"
    assert set(dns[0]["resolver"]) == {"dns"}
    assert dns[0]["resolver"]["dns"]["hostname"]


def test_env_defaults_point_at_compose_services(compose):
    """The defaults make each config work unchanged inside the compose stack."""
    services = set(compose["services"])
    for name in CONFIG_FILES:
        for default in env_defaults(load(name)):
            host = re.sub(r"^https?://", "", default).split("/")[0].split(":")[0]
            if "." in host:  # a documentation example such as a Kubernetes headless service name
                continue
            assert host in services, f"{name}: default {default} names no compose service"


def test_compose_pins_the_collector_version_the_configs_are_written_for(compose):
    images = {svc.get("image") for svc in compose["services"].values()}
    assert COLLECTOR_IMAGE in images
    for name in CONFIG_FILES:
        assert COLLECTOR_IMAGE in (CONFIG_DIR / name).read_text()
    assert COLLECTOR_IMAGE in (CONFIG_DIR / "README.md").read_text()
