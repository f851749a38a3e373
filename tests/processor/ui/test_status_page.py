"""The status page (``gensight serve --ui-endpoint``): a live processor fed a stream with an
incident, looked at in Debian's headless Chromium; access rules; the 2,000-series bound; no content."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_wire import key_value

from gensight.processor.config import ConfigError, config_from_mapping
from gensight.processor.server import ProcessorServer
from gensight.processor.ui.config import UIConfig
from gensight.processor.ui.server import StatusPage
from gensight.processor.ui.state import StatusState

S = 1_000_000_000
SECRET = "SECRET-PROMPT-TEXT-7f3a"  # message content on every input span: must never reach a page
TEMPLATE = "http://tempo.example/trace/{trace_id}"
INCIDENT = "chat-app|chat|openai|gpt-4o"
HEALTHY = "chat-app|chat|openai|gpt-4o-mini"


def get(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, headers=headers)
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


# -- a live processor with an incident -------------------------------------------------------------

def incident_request(base_ns: int, minute: int) -> ExportTraceServiceRequest:
    """One minute of chat-app traffic: 10 gpt-4o-mini calls, 10 gpt-4o calls of which 5 fail."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(key_value("service.name", "chat-app"))
    ss = rs.scope_spans.add()
    for i in range(20):
        model, failed = ("gpt-4o", i % 4 == 3) if i % 2 else ("gpt-4o-mini", False)
        span = ss.spans.add(name=f"chat {model}", trace_id=os.urandom(16), span_id=os.urandom(8), kind=3)
        span.start_time_unix_nano = base_ns + minute * 60 * S + i * 2 * S
        span.end_time_unix_nano = span.start_time_unix_nano + (600 if model == "gpt-4o" else 400) * 1_000_000
        span.status.code = 2 if failed else 0
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": model,
                 "gen_ai.input.messages": SECRET, **({"error.type": "Timeout"} if failed else {})}
        span.attributes.extend(key_value(k, v) for k, v in attrs.items())
    return req


@pytest.fixture(scope="module")
def live():
    """``gensight serve`` in-process with the page on: 15 minutes of recent event time, two series
    of one service; gpt-4o fails half its calls (an availability SLO on it burns fast)."""
    cfg = config_from_mapping({
        "receivers": {"grpc": None, "http": {"endpoint": "127.0.0.1:0"}},
        "pipeline": {"window_s": 60, "allowed_lateness_s": 0, "idle_tick_s": 0.2},
        "ui": {"endpoint": "127.0.0.1:0"},
        "analytics": {"slos": [{"name": "gpt-4o-availability", "type": "availability", "target": 0.99,
                                "selector": {"model": "gpt-4o"}}],
                      "alerts": {"trace_url_template": TEMPLATE}, "admin": {"enabled": False}},
    })
    srv = ProcessorServer(cfg, sinks=None)
    srv.start()
    base = (time.time_ns() // (60 * S)) * 60 * S - 15 * 60 * S
    ids: dict[str, set[str]] = {"gpt-4o": set(), "gpt-4o-mini": set(), "failed": set()}
    try:
        for minute in range(15):
            req = incident_request(base, minute)
            for span in req.resource_spans[0].scope_spans[0].spans:
                model = next(kv.value.string_value for kv in span.attributes if kv.key == "gen_ai.request.model")
                ids[model].add(span.trace_id.hex())
                if span.status.code == 2:
                    ids["failed"].add(span.trace_id.hex())
            post = urllib.request.Request(f"http://127.0.0.1:{srv.http_port}/v1/traces", data=req.SerializeToString(),
                                          headers={"Content-Type": "application/x-protobuf"})
            with urllib.request.urlopen(post, timeout=10) as resp:
                assert resp.status == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and 'data-state="page"' not in get(srv.ui_url)[2]:
            time.sleep(0.2)
        yield srv, ids
    finally:
        srv.stop()


class _Dom(HTMLParser):
    """Rows of the series table and the trace links of the alerts table."""

    def __init__(self) -> None:
        super().__init__()
        self.series_state: dict[str, str] = {}
        self.trace_ids: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        a = dict(attrs)
        if tag == "tr" and "data-state" in a:
            self.series_state[a["data-series"]] = a["data-state"]
        if tag == "a" and a.get("class") == "trace":
            self.trace_ids.append(a["data-trace-id"])
            assert a["href"] == TEMPLATE.replace("{trace_id}", a["data-trace-id"])
        if tag == "img":
            self.images.append(a["src"])


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run")


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("Debian chromium not installed (.ci/run installs it)")
    profile = tmp_path / f"profile-{time.monotonic_ns()}"  # a fresh profile every run
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=120)


def test_browser_shows_the_incident_series_alerting_with_a_trace_link_to_an_input_span(live, tmp_path):
    srv, ids = live
    proc = chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", srv.ui_url)
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.series_state.get(INCIDENT) == "page", proc.stdout[-3000:]
    assert dom.series_state.get(HEALTHY) == "ok"
    assert dom.trace_ids and set(dom.trace_ids) <= ids["gpt-4o"] & ids["failed"]  # the alert's failed calls
    shot = tmp_path / "status.png"
    chromium(tmp_path, "--window-size=1400,1000", "--hide-scrollbars", f"--screenshot={shot}", srv.ui_url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_series_page_shows_alert_history_and_exemplar_links(live):
    srv, ids = live
    status, _, html = get(f"http://127.0.0.1:{srv.ui_port}/ui/series/chat-app%7Cchat%7Copenai%7Cgpt-4o")
    assert status == 200 and "slo_burn_fast" in html
    linked = set(re.findall(r'data-trace-id="([0-9a-f]{32})"', html))
    assert linked and linked <= ids["gpt-4o"]


def test_charts_are_svg_from_matplotlib(live):
    srv, _ = live
    for size in ("small", "large"):
        status, headers, svg = get(f"http://127.0.0.1:{srv.ui_port}/ui/chart/chat-app%7Cchat%7Copenai%7Cgpt-4o.svg?size={size}")
        assert status == 200 and headers["Content-Type"].startswith("image/svg+xml")
        assert "<svg" in svg and "Matplotlib" in svg


def test_no_message_content_anywhere_on_the_page(live):
    srv, _ = live
    base = f"http://127.0.0.1:{srv.ui_port}"
    dom = _Dom()
    overview = get(srv.ui_url)[2]
    dom.feed(overview)
    bodies = [overview, get(f"{base}/ui/series/chat-app%7Cchat%7Copenai%7Cgpt-4o")[2],
              *(get(base + src.replace("&amp;", "&"))[2] for src in dom.images)]
    assert len(bodies) >= 4 and not any(SECRET in b for b in bodies)


def test_page_is_read_only(live):
    srv, _ = live
    conn = http.client.HTTPConnection("127.0.0.1", srv.ui_port, timeout=5)
    conn.request("POST", "/ui/", body=b"x")
    assert conn.getresponse().status == 405
    conn.close()


# -- access ----------------------------------------------------------------------------------------

@pytest.fixture
def page():
    started: list[StatusPage] = []

    def start(endpoint: str = "127.0.0.1:0", token: str | None = None) -> StatusPage:
        p = StatusPage(UIConfig(endpoint=endpoint), token=token)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.shutdown()


def test_token_is_required_when_configured(page):
    p = page(token="s3cret")
    assert get(p.url)[0] == 401
    assert get(p.url, Authorization="Bearer wrong")[0] == 401
    assert get(p.url, Authorization="Bearer s3cret")[0] == 200


def test_token_in_the_url_becomes_a_cookie_and_leaves_the_address(page):
    p = page(token="s3cret")
    status, headers, _ = get(p.url + "?token=s3cret")
    assert status == 303 and "token" not in headers["Location"]
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and get(p.url, Cookie=cookie)[0] == 200


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
            addr = s.getsockname()[0]
        except OSError:
            return None
    return None if addr.startswith("127.") else addr


def test_an_endpoint_without_host_binds_loopback_only(page):
    p = page(endpoint="0")
    assert get(p.url)[0] == 200 and p.url.startswith("http://127.0.0.1:")
    addr = _non_loopback_address()
    if addr is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    with pytest.raises(OSError), socket.create_connection((addr, p.port), timeout=2):
        pass


def test_page_is_off_by_default_and_a_bad_endpoint_names_the_key():
    assert config_from_mapping({}).ui.endpoint is None
    with pytest.raises(ConfigError, match="ui.endpoint"):
        config_from_mapping({"ui": {"endpoint": "localhost:http"}})


# -- scale and escaping (no server) ---------------------------------------------------------------

def _many_series(n: int, windows: int = 3) -> StatusState:
    from gensight.processor.analyse.sli import SLIAnalyser
    from gensight.processor.export.metric_builder import build_request as metrics_request
    from gensight.processor.points import Window
    from gensight.processor.records import CallRecord

    state = StatusState()
    sli = SLIAnalyser()
    for w in range(windows):
        win = Window(w * 60 * S, (w + 1) * 60 * S)
        sli.observe(win, [CallRecord("chat", f"svc{i % 20}", "openai", f"model-{i}", win.start_ns + S, win.start_ns + 2 * S,
                                     1.0, error=(i % 7 == 0)) for i in range(n)])
        state.export(metrics_request(sli.close(win)))
    return state


# Stated bound: with 2,000 series a page view (snapshot, severity sort, one page of HTML) takes
# well under PAGE_BOUND_S on this 2-core VM (measured ~0.05 s; the bound leaves room for noise).
PAGE_BOUND_S = 1.0


def test_a_page_of_2000_series_renders_within_the_stated_bound_and_holds_one_page_of_rows():
    from gensight.processor.ui import pages

    state = _many_series(2000)
    started = time.perf_counter()
    html = pages.overview(state.snapshot(), 2, 50, TEMPLATE)
    elapsed = time.perf_counter() - started
    assert elapsed < PAGE_BOUND_S, f"{elapsed:.3f} s"
    assert html.count('data-state="') == 50 and "page 2 of 40" in html


def test_a_request_holding_several_windows_gives_each_window_its_own_values():
    from gensight.processor.analyse.sli import SLIAnalyser
    from gensight.processor.export.metric_builder import build_request as metrics_request
    from gensight.processor.points import Window
    from gensight.processor.records import CallRecord

    sli, points = SLIAnalyser(), []
    for w, n in enumerate((4, 10, 6)):  # the watermark passed three windows at once: one request
        win = Window(w * 60 * S, (w + 1) * 60 * S)
        sli.observe(win, [CallRecord("chat", "svc", "openai", "m", win.start_ns + S, win.start_ns + 2 * S, 1.0,
                                     cost_usd=0.01) for _ in range(n)])
        points += sli.close(win)
    state = StatusState()
    state.export(metrics_request(points))
    history = state.series_detail("svc|chat|openai|m").history
    assert [p.calls for p in history] == [4, 10, 6]
    assert [p.cost_rate_usd_per_min for p in history] == pytest.approx([0.04, 0.1, 0.06])


def test_rows_sort_by_severity_then_error_rate():
    state = _many_series(30, windows=1)
    rows = state.snapshot().rows
    assert rows[0].error_rate == 1.0 and rows[-1].error_rate == 0.0  # model-0, -7, ... fail every call


def test_series_names_are_escaped():
    from gensight.processor.export.metric_builder import build_request as metrics_request
    from gensight.processor.points import GAUGE, MetricPoint

    state = StatusState()
    attrs = (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "x"), ("gen_ai.request.model", "<script>x</script>"))
    state.export(metrics_request([MetricPoint("gensight.sli.availability", GAUGE, "1", "svc", attrs, 1.0, 0, 60 * S)]))
    from gensight.processor.ui import pages

    html = pages.overview(state.snapshot(), 1, 50, "")
    assert "<script>" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_without_the_ui_extra_the_page_is_a_config_error_naming_the_install(monkeypatch):
    import importlib.util

    from gensight.processor.ui.server import build_status_page

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    with pytest.raises(ConfigError, match=r"ui.endpoint: .*matplotlib.*gensight\[ui\]"):
        build_status_page(config_from_mapping({"ui": {"endpoint": "127.0.0.1:0"}}))


def test_quality_column_shows_the_lowest_evaluation_score_of_the_window():
    from gensight.processor.export.metric_builder import build_request as metrics_request
    from gensight.processor.points import GAUGE, MetricPoint

    series = (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"), ("gen_ai.request.model", "m"))
    points = [MetricPoint("gensight.sli.availability", GAUGE, "1", "svc", series, 1.0, 0, 60 * S),
              MetricPoint("gensight.sli.relevance", GAUGE, "1", "svc", series, 0.9, 0, 60 * S)]
    points += [MetricPoint("gensight.sli.quality", GAUGE, "1", "svc", (*series, ("gen_ai.evaluation.name", name)),
                           score, 0, 60 * S) for name, score in (("groundedness", 0.8), ("concision", 0.45))]
    state = StatusState()
    state.export(metrics_request(points))
    (row,) = state.snapshot().rows
    assert row.quality == 0.45  # the worse of the two evaluations, not the retrieval relevance


def test_quality_column_falls_back_to_retrieval_relevance_without_evaluations():
    from gensight.processor.export.metric_builder import build_request as metrics_request
    from gensight.processor.points import GAUGE, MetricPoint

    series = (("gen_ai.operation.name", "retrieval"), ("gen_ai.provider.name", "chroma"), ("gen_ai.data_source.id", "kb"))
    state = StatusState()
    state.export(metrics_request([MetricPoint("gensight.sli.relevance", GAUGE, "1", "svc", series, 0.7, 0, 60 * S)]))
    (row,) = state.snapshot().rows
    assert row.quality == 0.7
