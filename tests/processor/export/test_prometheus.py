"""Prometheus endpoint: naming contract, types, delta accumulation, bounds; checked with promtool
and scraped by a real Prometheus server when Debian's prometheus is installed. The text is written
by prometheus_client, so tests read it back with its parsers and compare samples, not bytes."""

from __future__ import annotations

import contextlib
import http.client
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample, Timestamp

from gensight.processor.export.prometheus import (
    CONTENT_TYPE,
    PrometheusConfig,
    PrometheusEndpoint,
    PrometheusStore,
    label_name,
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


def render(*requests, openmetrics: bool = False) -> str:
    store = PrometheusStore()
    for r in requests:
        store.update(r)
    return store.render(openmetrics=openmetrics)


def parse(text: str, openmetrics: bool = False) -> list[Sample]:
    """Every sample of a scrape, read back by prometheus_client's parser of that format (the
    OpenMetrics one is strict: it rejects what Prometheus' OpenMetrics parser would)."""
    families = openmetrics_families(text) if openmetrics else text_string_to_metric_families(text)
    return [s for fam in families for s in fam.samples]


def values(text: str, name: str, **labels: str) -> list[float]:
    """Values of the samples called ``name`` whose labels include ``labels``, in scrape order."""
    return [s.value for s in parse(text) if s.name == name and labels.items() <= s.labels.items()]


def test_names_have_dots_replaced_and_no_suffixes():
    names = {s.name for s in parse(render(contract_request()))}
    assert names == {"gensight_calls", "gensight_call_duration_bucket", "gensight_call_duration_sum",
                     "gensight_call_duration_count", "gensight_sli_latency", "gensight_sli_cost_per_call"}


def test_family_types_and_the_untyped_counter_without_total():
    """prometheus_client names counter samples ``<name>_total``; a monotonic Sum whose name does not
    end in ``_total`` is therefore exposed untyped (OpenMetrics: unknown) to keep its name."""
    text = render(contract_request())
    types = {fam.name: fam.type for fam in text_string_to_metric_families(text)}
    assert types == {"gensight_calls": "unknown", "gensight_call_duration": "histogram",
                     "gensight_sli_latency": "gauge", "gensight_sli_cost_per_call": "gauge"}
    assert "# TYPE gensight_calls untyped" in text
    assert "# TYPE gensight_calls unknown" in render(contract_request(), openmetrics=True)


def test_a_monotonic_sum_named_total_stays_a_counter_under_its_own_name():
    req = ExportMetricsServiceRequest()
    s = req.resource_metrics.add().scope_metrics.add().metrics.add(name="jobs.done_total").sum
    s.is_monotonic = True
    s.data_points.add(as_int=4)
    for openmetrics in (False, True):
        text = render(req, openmetrics=openmetrics)
        (fam,) = openmetrics_families(text) if openmetrics else text_string_to_metric_families(text)
        assert fam.type == "counter" and [(x.name, x.value) for x in fam.samples] == [("jobs_done_total", 4)]


def test_resource_service_name_becomes_service_name_label_and_attribute_dots_become_underscores():
    (calls,) = [s for s in parse(render(contract_request())) if s.name == "gensight_calls"]
    assert calls.labels == {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai",
                            "gen_ai_request_model": "gpt-4o", "outcome": "ok", "service_name": "chat-app"}
    assert calls.value == 3


def test_histogram_exposes_cumulative_buckets_sum_and_count():
    text = render(contract_request(calls=5))
    buckets = [(s.labels["le"], s.value) for s in parse(text) if s.name == "gensight_call_duration_bucket"]
    assert buckets == [("0.01", 1), ("0.02", 2), ("0.04", 2), ("+Inf", 5)]
    assert values(text, "gensight_call_duration_sum") == [1.5]
    assert values(text, "gensight_call_duration_count") == [5]


def test_quantile_and_overflow_attributes_are_labels():
    text = render(contract_request())
    assert 'quantile="0.99"' in text
    assert 'otel_metric_overflow="true"' in text
    assert values(text, "gensight_sli_cost_per_call", otel_metric_overflow="true") == [0.000125]


def test_cumulative_values_replace_and_delta_values_accumulate():
    assert values(render(contract_request(3), contract_request(7)), "gensight_calls") == [7]
    text = render(contract_request(3, DELTA), contract_request(4, DELTA))
    assert values(text, "gensight_calls") == [7]
    assert values(text, "gensight_call_duration_count") == [7]


def test_services_are_separate_series():
    text = render(contract_request(service="a"), contract_request(service="b"))
    assert 'service_name="a"' in text and 'service_name="b"' in text


def test_label_values_are_escaped():
    req = contract_request()
    req.resource_metrics[0].resource.attributes[0].value.string_value = 'we"ird\\svc\n'
    text = render(req)
    assert 'service_name="we\\"ird\\\\svc\\n"' in text
    assert values(text, "gensight_calls", service_name='we"ird\\svc\n') == [3]


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


def test_a_scrape_between_two_updates_reuses_the_text_of_the_last_one():
    store = PrometheusStore()
    store.update(contract_request())
    first = store.render()
    assert store.render() is first  # not rendered again
    assert store.render(openmetrics=True) is not first  # each format its own text


def test_a_scrape_after_an_update_shows_the_update():
    store = PrometheusStore()
    store.update(contract_request(service="before"))
    assert 'service_name="before"' in store.render()
    store.update(contract_request(service="after"))
    assert 'service_name="after"' in store.render()


def test_a_series_that_expires_leaves_the_reused_text():
    store = PrometheusStore(series_ttl_s=0.2)
    store.update(contract_request())
    assert store.render() != "" and store.render() != ""
    time.sleep(0.3)
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
def test_output_passes_promtool_apart_from_the_documented_lint():
    """One lint is a consequence of the contract, not a format error: the ``quantile`` attribute on
    the gensight.sli.latency gauge. (Counters without ``_total`` are untyped, so no counter lint.)"""
    text = render(contract_request(), contract_request(service="other"))
    proc = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode in (0, 3), proc.stderr  # 1 = parse error
    problems = [p for p in (proc.stdout + proc.stderr).splitlines() if p.strip()]
    assert problems and all('non-summary metrics should not have "quantile" label' in p for p in problems), problems


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
    assert values(body, "gensight_calls", outcome="ok", service_name="chat-app") == [9]


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


@contextlib.contextmanager
def real_prometheus(tmp_path, target_port: int | dict[str, int], *flags: str):
    """Debian's prometheus scraping ``target_port`` (job ``gensight``; or a job name -> port map)
    every 200 ms; yields its HTTP port."""
    jobs = target_port if isinstance(target_port, dict) else {"gensight": target_port}
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 200ms, scrape_timeout: 200ms}\nscrape_configs: ["
        + ",".join(f"{{job_name: {job}, static_configs: [{{targets: ['127.0.0.1:{port}']}}]}}" for job, port in jobs.items())
        + "]\n"
    )
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'data'}",
         "--web.listen-address=127.0.0.1:0", "--log.level=warn", *flags],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        yield _prometheus_port(proc)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def poll_api(port: int, path: str, timeout_s: float = 20.0) -> list:
    """``data`` of a Prometheus API answer once it is non-empty (target sync takes ~5 s)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
                data = json.load(resp)["data"]
            data = data.get("result", data) if isinstance(data, dict) else data  # query or metadata
            if data:
                return data
        except urllib.error.HTTPError as exc:
            if exc.code != 503:  # 503: Prometheus is still opening its TSDB; ask again
                raise
        time.sleep(0.2)
    return []


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian prometheus not installed")
def test_real_prometheus_scrapes_the_contract_names(endpoint, tmp_path):
    prom = endpoint()
    prom.export(contract_request(4))
    with real_prometheus(tmp_path, prom.port) as port:
        result = poll_api(port, "/api/v1/query?query=gensight_calls")
    assert result, "Prometheus never scraped gensight_calls"
    labels = result[0]["metric"]
    assert labels["service_name"] == "chat-app" and labels["gen_ai_request_model"] == "gpt-4o"
    assert result[0]["value"][1] == "4"


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
        assert values(get(prom.port)[2], "gensight_calls", service_name="chat-app") == [2]
    finally:
        prom.shutdown(1.0)


# ---------------------------------------------------------------- exemplars and OpenMetrics

S = 1_000_000_000
OPENMETRICS = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"


def traced_request(base_ns: int = 0):
    """What the processor exports for one window of two series: the SLI analyser's points for
    traced calls, through the metric builder. gpt-4o's slowest call is trace 0x..02, its failure
    0x..03; gpt-4o-mini's only call is trace 0x..04."""
    from gensight.processor.analyse.sli import SLIAnalyser
    from gensight.processor.export.metric_builder import build_request
    from gensight.processor.points import Window
    from gensight.processor.records import CallRecord

    def call(model: str, d: float, n: int, error: bool = False) -> CallRecord:
        end = base_ns + 30 * S + n
        return CallRecord("chat", "chat-app", "openai", model, end - int(d * S), end, d, error=error,
                          trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big"))

    sli = SLIAnalyser()
    window = Window(base_ns, base_ns + 60 * S)
    sli.observe(window, [call("gpt-4o", 0.015, 1), call("gpt-4o", 3.0, 2), call("gpt-4o", 0.03, 3, error=True),
                         call("gpt-4o-mini", 0.5, 4)])
    return build_request(sli.close(window))


def test_classic_text_format_is_unchanged_by_exemplars():
    req = traced_request()
    bare = ExportMetricsServiceRequest()
    bare.CopyFrom(req)
    for rm in bare.resource_metrics:
        for m in rm.scope_metrics[0].metrics:
            for dp in m.histogram.data_points:
                del dp.exemplars[:]
    assert render(req) == render(bare)
    assert " # {" not in render(req) and "# EOF" not in render(req)


def test_openmetrics_puts_each_exemplar_on_the_bucket_of_its_value():
    text = render(traced_request(), openmetrics=True)
    assert text.endswith("# EOF\n")
    buckets = [s for s in parse(text, openmetrics=True) if s.name == "gensight_call_duration_bucket"]

    def exemplars(model: str) -> dict:
        return {s.labels["le"]: s.exemplar for s in buckets if s.labels["gen_ai_request_model"] == model and s.exemplar}

    gpt4o = exemplars("gpt-4o")
    assert set(gpt4o) == {"5.12", "0.04"}  # the slow 3.0 s call in (2.56, 5.12], the failed 0.03 s one in (0.02, 0.04]
    slow = gpt4o["5.12"]
    assert slow.labels == {"trace_id": (2).to_bytes(16, "big").hex(), "span_id": (2).to_bytes(8, "big").hex()}
    assert slow.value == 3.0 and slow.timestamp == Timestamp(30, 2)  # the span's end, to the nanosecond
    assert gpt4o["0.04"].labels["trace_id"] == (3).to_bytes(16, "big").hex()
    # the other series carries its own call, never gpt-4o's
    assert [e.labels["trace_id"] for e in exemplars("gpt-4o-mini").values()] == [(4).to_bytes(16, "big").hex()]


def test_endpoint_serves_openmetrics_only_when_asked(endpoint):
    prom = endpoint()
    prom.export(traced_request())
    status, ctype, body = get(prom.port, Accept=OPENMETRICS)
    assert status == 200 and ctype.startswith("application/openmetrics-text; version=1.0.0")
    assert 'trace_id="' in body and body.endswith("# EOF\n")
    status, ctype, body = get(prom.port)
    assert ctype.startswith("text/plain; version=0.0.4") and " # {" not in body


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian prometheus not installed")
def test_real_prometheus_stores_the_exemplars_of_the_right_series(endpoint, tmp_path):
    prom = endpoint()
    now = time.time()
    prom.export(traced_request(int(now - 60) * S))  # exemplars carry event time: recent spans
    query = f"/api/v1/query_exemplars?query=gensight_call_duration_bucket&start={now - 3600:.0f}&end={now + 3600:.0f}"
    with real_prometheus(tmp_path, prom.port, "--enable-feature=exemplar-storage") as port:
        result = poll_api(port, query)
    assert result, "Prometheus stored no exemplars"
    by_model: dict[str, set[str]] = {}
    for series in result:
        ids = {e["labels"]["trace_id"] for e in series["exemplars"]}
        by_model.setdefault(series["seriesLabels"]["gen_ai_request_model"], set()).update(ids)
    assert by_model == {"gpt-4o": {(2).to_bytes(16, "big").hex(), (3).to_bytes(16, "big").hex()},
                        "gpt-4o-mini": {(4).to_bytes(16, "big").hex()}}


# ---------------------------------------------------------------- the text, written by prometheus_client


def contract_series() -> set[tuple[str, frozenset]]:
    """(sample name, labels) of ``contract_request()`` as the naming contract spells them (module
    docstring of export/prometheus.py) -- written out by hand, not derived from the renderer."""
    base = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4o",
            "service_name": "chat-app"}
    series = [("gensight_calls", {**base, "outcome": "ok"}),
              *(("gensight_call_duration_bucket", {**base, "le": le}) for le in ("0.01", "0.02", "0.04", "+Inf")),
              ("gensight_call_duration_sum", base), ("gensight_call_duration_count", base),
              ("gensight_sli_latency", {**base, "quantile": "0.5"}), ("gensight_sli_latency", {**base, "quantile": "0.99"}),
              ("gensight_sli_cost_per_call", {**base, "otel_metric_overflow": "true"})]
    return {(name, frozenset(labels.items())) for name, labels in series}


@pytest.mark.parametrize("openmetrics", [False, True], ids=["classic", "openmetrics"])
def test_every_series_name_and_label_set_is_the_contracts(openmetrics):
    text = render(contract_request(), openmetrics=openmetrics)
    assert {(s.name, frozenset(s.labels.items())) for s in parse(text, openmetrics)} == contract_series()


def test_an_empty_store_renders_nothing_or_only_the_eof():
    assert PrometheusStore().render() == ""
    assert PrometheusStore().render(openmetrics=True) == "# EOF\n"


def odd_request() -> ExportMetricsServiceRequest:
    """A summary, a non-monotonic sum, and attribute keys that need sanitising."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    _attrs(rm.resource.attributes, {"9lives": "x", "host-name": "h"})
    sm = rm.scope_metrics.add()
    m = sm.metrics.add(name="rpc.latency", unit="ms", description='help with "quotes" \\ and\nnewline')
    sdp = m.summary.data_points.add(count=10, sum=123.5)
    sdp.quantile_values.add(quantile=0.5, value=10.0)
    sdp.quantile_values.add(quantile=0.99, value=80.0)
    m = sm.metrics.add(name="queue.depth")
    m.sum.is_monotonic = False
    m.sum.data_points.add(as_double=-2.5)
    return req


@pytest.mark.parametrize("openmetrics", [False, True], ids=["classic", "openmetrics"])
def test_summary_gauge_sum_and_sanitised_labels_in_both_formats(openmetrics):
    text = render(odd_request(), openmetrics=openmetrics)
    families = list(openmetrics_families(text) if openmetrics else text_string_to_metric_families(text))
    assert {f.name: f.type for f in families} == {"rpc_latency": "summary", "queue_depth": "gauge"}
    got = {(s.name, tuple(sorted(s.labels.items())), s.value) for f in families for s in f.samples}
    res = (("host_name", "h"), ("key_9lives", "x"))
    assert got == {("rpc_latency", (*res, ("quantile", "0.5")), 10.0), ("rpc_latency", (*res, ("quantile", "0.99")), 80.0),
                   ("rpc_latency_sum", res, 123.5), ("rpc_latency_count", res, 10.0), ("queue_depth", res, -2.5)}


@pytest.mark.parametrize("openmetrics", [False, True], ids=["classic", "openmetrics"])
def test_a_reserved_looking_label_stays_unquoted(openmetrics):
    """``__x`` is reserved to Prometheus but stored as sent (checked with Prometheus 2.42), so it
    stays as before -- not quoted into the UTF-8 syntax Prometheus 2.x cannot parse."""
    req = contract_request()
    _attrs(req.resource_metrics[0].resource.attributes, {"__internal": "y"})
    assert 'gensight_calls{__internal="y",' in render(req, openmetrics=openmetrics)


def test_a_colon_in_a_metric_name_is_kept_in_the_classic_text():
    """(prometheus_client's OpenMetrics encoder writes it as ``_``; OTel names cannot contain ``:``.)"""
    req = ExportMetricsServiceRequest()
    req.resource_metrics.add().scope_metrics.add().metrics.add(name="ns:ready").gauge.data_points.add(as_int=1)
    assert [(s.name, s.value) for s in parse(render(req))] == [("ns:ready", 1)]


@pytest.mark.parametrize("openmetrics", [False, True], ids=["classic", "openmetrics"])
def test_bucket_bounds_keep_their_decimal_spelling(openmetrics):
    """``le`` is part of the series identity: token buckets stay ``le="1"`` / ``le="67108864"``
    (prometheus_client alone would write ``1.0`` / ``6.7108864e+07``)."""
    req = ExportMetricsServiceRequest()
    m = req.resource_metrics.add().scope_metrics.add().metrics.add(name="gen_ai.client.token.usage")
    m.histogram.data_points.add(count=3, sum=9.0, explicit_bounds=[1, 4, 67108864], bucket_counts=[1, 1, 1, 0])
    buckets = [s.labels["le"] for s in parse(render(req, openmetrics=openmetrics), openmetrics)
               if s.name.endswith("_bucket")]
    assert buckets == ["1", "4", "67108864", "+Inf"]


def test_help_text_is_escaped_per_format():
    classic, openmetrics = render(odd_request()), render(odd_request(), openmetrics=True)
    assert '# HELP rpc_latency help with "quotes" \\\\ and\\nnewline [ms]\n' in classic
    assert '# HELP rpc_latency help with \\"quotes\\" \\\\ and\\nnewline [ms]\n' in openmetrics


def test_a_nameless_metric_is_skipped_and_counted():
    req = ExportMetricsServiceRequest()
    req.resource_metrics.add().scope_metrics.add().metrics.add(name="").gauge.data_points.add(as_int=1)
    store = PrometheusStore()
    store.update(req)
    assert store.render() == "" and store.stats().skipped_points == 1


class _StaticScrape(http.server.ThreadingHTTPServer):
    """Serves one store's classic text whatever the scraper asks for (Debian's Prometheus 2.42
    always asks for OpenMetrics first and has no ``scrape_protocols`` to ask otherwise)."""

    def __init__(self, store: PrometheusStore) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = store.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.mark.skipif(shutil.which("prometheus") is None, reason="Debian prometheus not installed")
def test_real_prometheus_stores_the_contract_series_from_both_formats(endpoint, tmp_path):
    prom = endpoint()
    prom.export(contract_request())
    classic = _StaticScrape(prom.store)
    threading.Thread(target=classic.serve_forever, daemon=True).start()
    try:
        with real_prometheus(tmp_path, {"openmetrics": prom.port, "classic": classic.server_address[1]}) as port:
            stored = {job: poll_api(port, f"/api/v1/series?match[]=%7Bjob%3D%22{job}%22,__name__%3D~%22gensight_.%2A%22%7D")
                      for job in ("openmetrics", "classic")}
            meta = poll_api(port, "/api/v1/metadata?metric=gensight_calls")
    finally:
        classic.shutdown()
        classic.server_close()
    for job, series in stored.items():
        got = {(s.pop("__name__"), frozenset((k, v) for k, v in s.items() if k not in ("job", "instance"))) for s in series}
        assert got == contract_series(), job
    assert {m["type"] for m in meta["gensight_calls"]} == {"unknown"}  # the documented consequence: untyped


_finite_or_not = st.floats(allow_nan=True, allow_infinity=True)
_metric = st.tuples(
    st.text(max_size=12),  # OTel name: anything, even empty
    st.sampled_from(["gauge", "counter", "updown", "delta", "histogram", "summary", "exponential"]),
    st.dictionaries(st.text(max_size=8).filter(lambda k: not label_name(k).startswith("__")),  # the parser's rule
                    st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), _finite_or_not, st.booleans()),
                    max_size=3),
    st.lists(_finite_or_not, min_size=1, max_size=4),
)


def _random_request(metrics: list) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    sm = req.resource_metrics.add().scope_metrics.add()
    for name, kind, attrs, numbers in metrics:
        m = sm.metrics.add(name=name, description=name)
        if kind == "gauge":
            _attrs(m.gauge.data_points.add(as_double=numbers[0]).attributes, attrs)
        elif kind in ("counter", "updown", "delta"):
            m.sum.is_monotonic = kind != "updown"
            m.sum.aggregation_temporality = DELTA if kind == "delta" else CUMULATIVE
            _attrs(m.sum.data_points.add(as_double=numbers[0]).attributes, attrs)
        elif kind == "histogram":
            dp = m.histogram.data_points.add(count=len(numbers), sum=numbers[0], explicit_bounds=sorted(numbers[1:]),
                                             bucket_counts=[1] * len(numbers))
            dp.exemplars.add(as_double=numbers[-1], trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
            _attrs(dp.attributes, attrs)
        elif kind == "summary":
            sdp = m.summary.data_points.add(count=3, sum=numbers[0])
            sdp.quantile_values.add(quantile=0.5, value=numbers[-1])
            _attrs(sdp.attributes, attrs)
        else:
            m.exponential_histogram.data_points.add(count=1)
    return req


@settings(max_examples=150, deadline=None)
@given(st.lists(_metric, max_size=6))
def test_any_request_renders_in_both_formats_without_crashing(metrics):
    """Bad or odd input is skipped and counted at update, never a failed scrape: whatever arrives,
    both formats render and the classic text parses."""
    store = PrometheusStore()
    store.update(_random_request(metrics))
    parse(store.render())
    assert store.render(openmetrics=True).endswith("# EOF\n")
