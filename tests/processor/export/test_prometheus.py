"""Prometheus endpoint: naming contract, types, delta accumulation, bounds; checked with promtool
and scraped by a real Prometheus server when Debian's prometheus is installed."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2

from gensight.processor.export.prometheus import (
    PrometheusConfig,
    PrometheusEndpoint,
    PrometheusStore,
    metric_name,
)
from gensight.processor.receive.tls import AuthConfig

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE
DELTA = metrics_pb2.AGGREGATION_TEMPORALITY_DELTA


def _attrs(target, attrs: dict) -> None:
    for k, v in attrs.items():
        a = target.add(key=k)
        if isinstance(v, bool):
            a.value.bool_value = v
        elif isinstance(v, int):
            a.value.int_value = v
        elif isinstance(v, float):
            a.value.double_value = v
        else:
            a.value.string_value = v


SERIES = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}


def contract_request(calls: int = 3, temporality: int = CUMULATIVE, service: str = "chat-app") -> ExportMetricsServiceRequest:
    """Points shaped like the processor's metric contract (issue 3)."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _attrs(rm.resource.attributes, {"service.name": service})
    sm = rm.scope_metrics.add()
    sm.scope.name = "gensight.processor"
    m = sm.metrics.add(name="gensight.calls", unit="{call}", description="LLM calls seen by the processor")
    m.sum.is_monotonic = True
    m.sum.aggregation_temporality = temporality
    dp = m.sum.data_points.add(as_int=calls)
    _attrs(dp.attributes, {**SERIES, "outcome": "ok"})
    m = sm.metrics.add(name="gensight.call.duration", unit="s", description="Call duration")
    m.histogram.aggregation_temporality = temporality
    hdp = m.histogram.data_points.add(count=calls, sum=1.5, explicit_bounds=[0.01, 0.02, 0.04], bucket_counts=[1, 1, 0, calls - 2])
    _attrs(hdp.attributes, SERIES)
    m = sm.metrics.add(name="gensight.sli.latency", unit="s", description="Latency quantiles per window")
    for q, v in (("0.5", 0.2), ("0.99", 1.25)):
        g = m.gauge.data_points.add(as_double=v)
        _attrs(g.attributes, {**SERIES, "quantile": q})
    m = sm.metrics.add(name="gensight.sli.cost_per_call", unit="USD")
    g = m.gauge.data_points.add(as_double=0.000125)
    _attrs(g.attributes, {**SERIES, "otel.metric.overflow": True})
    return req


def render(*requests) -> str:
    store = PrometheusStore()
    for r in requests:
        store.update(r)
    return store.render()


def test_names_have_dots_replaced_and_no_suffixes():
    text = render(contract_request())
    assert "# TYPE gensight_calls counter" in text
    assert "gensight_calls_total" not in text
    assert "# TYPE gensight_call_duration histogram" in text
    assert "gensight_call_duration_seconds" not in text
    assert "# TYPE gensight_sli_cost_per_call gauge" in text


def test_resource_service_name_becomes_service_name_label_and_attribute_dots_become_underscores():
    text = render(contract_request())
    line = next(li for li in text.splitlines() if li.startswith("gensight_calls{"))
    assert line == ('gensight_calls{gen_ai_operation_name="chat",gen_ai_provider_name="openai",'
                    'gen_ai_request_model="gpt-4o",outcome="ok",service_name="chat-app"} 3')


def test_histogram_exposes_cumulative_buckets_sum_and_count():
    lines = [li for li in render(contract_request(calls=5)).splitlines() if li.startswith("gensight_call_duration")]
    buckets = [li.split(" ")[-1] for li in lines if "_bucket" in li]
    assert buckets == ["1", "2", "2", "5"]
    assert any('le="0.01"' in li for li in lines) and any('le="+Inf"' in li for li in lines)
    assert any(li.startswith("gensight_call_duration_sum{") and li.endswith(" 1.5") for li in lines)
    assert any(li.startswith("gensight_call_duration_count{") and li.endswith(" 5") for li in lines)


def test_quantile_and_overflow_attributes_are_labels():
    text = render(contract_request())
    assert 'quantile="0.99"' in text
    assert 'otel_metric_overflow="true"' in text
    assert "} 0.000125" in text


def test_cumulative_values_replace_and_delta_values_accumulate():
    assert 'service_name="chat-app"} 7' in render(contract_request(3), contract_request(7))
    text = render(contract_request(3, DELTA), contract_request(4, DELTA))
    assert 'outcome="ok",service_name="chat-app"} 7' in text
    assert any(li.startswith("gensight_call_duration_count{") and li.endswith(" 7") for li in text.splitlines())


def test_services_are_separate_series():
    text = render(contract_request(service="a"), contract_request(service="b"))
    assert 'service_name="a"' in text and 'service_name="b"' in text


def test_label_values_are_escaped():
    req = contract_request()
    req.resource_metrics[0].resource.attributes[0].value.string_value = 'we"ird\\svc\n'
    assert 'service_name="we\\"ird\\\\svc\\n"' in render(req)


def test_series_cap_drops_new_series_and_counts():
    store = PrometheusStore(max_series=3)
    for i in range(5):
        store.update(contract_request(service=f"s{i}"))
    st = store.stats()
    assert st.series == 3 and st.dropped_series > 0


def test_idle_series_expire():
    store = PrometheusStore(series_ttl_s=0.01)
    store.update(contract_request())
    time.sleep(0.05)
    assert store.render() == ""


def test_exponential_histograms_are_skipped_and_counted():
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="x.exp")
    m.exponential_histogram.data_points.add(count=1)
    store = PrometheusStore()
    store.update(req)
    assert store.render() == "" and store.stats().skipped_points == 1


def test_type_clash_keeps_the_first_type():
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    sm.metrics.add(name="x.y").gauge.data_points.add(as_int=1)
    s = sm.metrics.add(name="x.y").sum
    s.is_monotonic = True
    s.data_points.add(as_int=2)
    store = PrometheusStore()
    store.update(req)
    assert "# TYPE x_y gauge" in store.render() and store.stats().skipped_points == 1


@pytest.mark.parametrize(("otel", "prom"), [("gensight.sli.availability", "gensight_sli_availability"), ("a-b/c", "a_b_c"),
                                            ("1abc", "_1abc")])
def test_metric_name_mapping(otel, prom):
    assert metric_name(otel) == prom


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) not installed")
def test_output_passes_promtool_apart_from_the_documented_lints():
    """Two lints are consequences of the contract, not format errors: counters without ``_total``
    (the naming decision) and the ``quantile`` attribute on the gensight.sli.latency gauge."""
    text = render(contract_request(), contract_request(service="other"))
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode in (0, 3), proc.stderr  # 1 = parse error
    problems = [p for p in (proc.stdout + proc.stderr).splitlines() if p.strip()]
    expected = ('counter metrics should have "_total" suffix', 'non-summary metrics should not have "quantile" label')
    assert all(any(e in p for e in expected) for p in problems), problems


# ---------------------------------------------------------------- the HTTP endpoint


@pytest.fixture
def endpoint():
    started: list[PrometheusEndpoint] = []

    def start(**cfg) -> PrometheusEndpoint:
        config = PrometheusConfig(endpoint="127.0.0.1:0", **cfg)
        config.validate()
        prom = PrometheusEndpoint(config)
        prom.start()
        started.append(prom)
        return prom

    yield start
    for p in started:
        p.shutdown(1.0)


def get(port: int, path: str = "/metrics", **headers):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read().decode()
    finally:
        conn.close()


def test_endpoint_serves_the_latest_exported_request(endpoint):
    prom = endpoint()
    assert prom.export(contract_request(3)) and prom.export(contract_request(9))
    status, ctype, body = get(prom.port)
    assert status == 200 and ctype.startswith("text/plain; version=0.0.4")
    assert 'outcome="ok",service_name="chat-app"} 9' in body


def test_endpoint_other_paths_are_404(endpoint):
    assert get(endpoint().port, "/")[0] == 404


def test_endpoint_bearer_auth(endpoint):
    prom = endpoint(auth=AuthConfig(bearer_tokens=("scrape",)))
    assert get(prom.port)[0] == 401
    assert get(prom.port, Authorization="Bearer scrape")[0] == 200


@pytest.mark.parametrize(("cfg", "message"), [({"endpoint": "x"}, "prometheus.endpoint"), ({"max_series": 0}, "prometheus.max_series"),
                                              ({"series_ttl_s": -1}, "prometheus.series_ttl_s")])
def test_config_validation_names_the_bad_key(cfg, message):
    with pytest.raises(ValueError, match=message):
        PrometheusConfig(**cfg).validate()


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian prometheus not installed")
def test_real_prometheus_scrapes_the_contract_names(endpoint, tmp_path):
    prom = endpoint()
    prom.export(contract_request(4))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 200ms, scrape_timeout: 200ms}\n"
        f"scrape_configs: [{{job_name: gensight, static_configs: [{{targets: ['127.0.0.1:{prom.port}']}}]}}]\n"
    )
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
         "--web.listen-address=127.0.0.1:0", "--log.level=warn"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        port = _prometheus_port(proc)
        deadline = time.monotonic() + 20
        result: list = []
        while time.monotonic() < deadline and not result:
            url = f"http://127.0.0.1:{port}/api/v1/query?query=gensight_calls"
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    result = json.load(resp)["data"]["result"]
            except urllib.error.HTTPError as exc:
                if exc.code != 503:  # 503: Prometheus is still opening its TSDB; ask again
                    raise
            if not result:
                time.sleep(0.2)
        assert result, "Prometheus never scraped gensight_calls"  # its target sync takes ~5 s
        labels = result[0]["metric"]
        assert labels["service_name"] == "chat-app" and labels["gen_ai_request_model"] == "gpt-4o"
        assert result[0]["value"][1] == "4"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _prometheus_port(proc: subprocess.Popen) -> int:
    """Prometheus does not print an ephemeral port; find its listening socket via /proc."""
    import re as _re

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        inodes = set()
        try:
            import os

            for fd in os.listdir(f"/proc/{proc.pid}/fd"):
                link = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                m = _re.match(r"socket:\[(\d+)\]", link)
                if m:
                    inodes.add(m.group(1))
            with open("/proc/net/tcp") as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A" and parts[9] in inodes:  # LISTEN
                        return int(parts[1].split(":")[1], 16)
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail("prometheus did not start listening")


def test_the_yaml_prometheus_section_is_the_endpoint_config():
    from gensight.processor.config import config_from_mapping

    prom = PrometheusEndpoint(config_from_mapping({"prometheus": {"endpoint": "127.0.0.1:0"}}).prometheus)
    prom.start()
    try:
        prom.export(contract_request(2))
        assert 'service_name="chat-app"} 2' in get(prom.port)[2]
    finally:
        prom.shutdown(1.0)
