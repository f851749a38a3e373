"""Soak: ingest at ~50 % of measured capacity for a long time; report RSS and latency drift.

A leak or a slowly growing structure (series, windows, sketches, retry buffers) shows up as RSS
that keeps climbing or request latency that creeps up while the offered load stays constant.

    python bench/soak.py                       # 10 min soak (default)
    python bench/soak.py --duration-s 120      # shorter run

Steps, all against one ``gensight serve`` subprocess on loopback:

1. capacity: send 512-span requests as fast as ``--clients`` threads can for ``--capacity-s``
   seconds; capacity = accepted spans/s.
2. soak: paced sending at ``--load`` x capacity for ``--duration-s``; every ``--sample-s`` the
   server's RSS (from /proc) and the latency percentiles of the requests sent since the last
   sample are recorded.
3. report: RSS at start / max / end, RSS slope over the second half, and request latency
   p50/p99 of the first vs the last 10 % of the run (their ratio is the drift; ~1.0 is good).

The payload is realistic GenAI traffic: several services, models, tools and retrievals, 5 %
errors, with tenant ids, timestamps advancing in event time with the wall clock. Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SERVICES = ["checkout", "support-bot", "search", "summariser"]
MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4o"), ("anthropic", "claude-sonnet-4"), ("openai", "o3-mini")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def build_request(rng: random.Random, n_spans: int, end_ns: int) -> bytes:
    """One request of ``n_spans`` GenAI spans ending around ``end_ns``, spread over the services."""
    by_service: dict[str, list[Span]] = {s: [] for s in SERVICES}
    for _ in range(n_spans):
        service = rng.choice(SERVICES)
        r = rng.random()
        dur_ns = int(rng.lognormvariate(-0.5, 0.6) * 1e9)
        end = end_ns - rng.randint(0, 500_000_000)
        error = rng.random() < 0.05
        if r < 0.7:
            provider, model = rng.choice(MODELS)
            attrs = [
                _kv("gen_ai.operation.name", "chat"), _kv("gen_ai.provider.name", provider),
                _kv("gen_ai.request.model", model), _kv("gen_ai.response.model", model),
                _kv("gen_ai.usage.input_tokens", rng.randint(50, 3000)),
                _kv("gen_ai.usage.output_tokens", rng.randint(5, 800)),
                _kv("enduser.id", f"user-{rng.randint(1, 500)}@example.com"),
            ]
            name = f"chat {model}"
        elif r < 0.85:
            tool = rng.choice(["lookup_order", "get_weather", "search_kb"])
            attrs = [_kv("gen_ai.operation.name", "execute_tool"), _kv("gen_ai.tool.name", tool)]
            name = f"execute_tool {tool}"
        elif r < 0.95:
            attrs = [_kv("gen_ai.operation.name", "retrieval"), _kv("gen_ai.data_source.id", "kb-main"),
                     _kv("gen_ai.request.top_k", 5), _kv("gensight.retrieval.top_score", rng.random())]
            name = "retrieval kb-main"
        else:
            attrs = [_kv("http.method", "GET")]  # a non-GenAI span: skipped cheaply
            name = "GET /health"
        if error:
            attrs.append(_kv("error.type", rng.choice(["RateLimitError", "APITimeoutError"])))
        by_service[service].append(Span(
            trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name=name, kind=Span.SPAN_KIND_CLIENT,
            start_time_unix_nano=end - dur_ns, end_time_unix_nano=end, attributes=attrs,
            status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
        ))
    req = ExportTraceServiceRequest(resource_spans=[
        ResourceSpans(resource=Resource(attributes=[_kv("service.name", s)]), scope_spans=[ScopeSpans(spans=spans)])
        for s, spans in by_service.items() if spans
    ])
    return req.SerializeToString()


class BodyPool:
    """Pre-built requests whose span times are shifted to "now" per send (building 512 GenAI spans
    from scratch costs more than sending them, which would cap the offered load)."""

    def __init__(self, rng: random.Random, n_spans: int, size: int = 16) -> None:
        self.built_ns = time.time_ns()
        self.requests = [ExportTraceServiceRequest.FromString(build_request(rng, n_spans, self.built_ns))
                         for _ in range(size)]
        self._i = 0
        self._lock = threading.Lock()

    def next_body(self) -> bytes:
        with self._lock:
            req = self.requests[self._i % len(self.requests)]
            self._i += 1
            shift = time.time_ns() - self.built_ns
            out = ExportTraceServiceRequest()
            out.CopyFrom(req)
        for rs in out.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    sp.start_time_unix_nano += shift
                    sp.end_time_unix_nano += shift
                    sp.trace_id = os.urandom(16)
        return out.SerializeToString()


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    """``gensight serve`` as a subprocess on free loopback ports, metrics exported nowhere useful."""

    def __init__(self, extra_args: list[str]) -> None:
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.tmp = tempfile.TemporaryDirectory(prefix="gensight-soak-")
        log = open(Path(self.tmp.name) / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        exe = Path(sys.executable).with_name("gensight")
        cmd = [str(exe) if exe.exists() else "gensight", "serve",
               "--grpc-endpoint", f"127.0.0.1:{self.grpc_port}", "--http-endpoint", f"127.0.0.1:{self.http_port}",
               *extra_args]
        env = {**os.environ, "OTEL_METRIC_EXPORT_INTERVAL": "10000"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}",
                                             options=[("grpc.max_send_message_length", 64 << 20)])
        grpc.channel_ready_future(self.channel).result(timeout=30)

    def stop(self) -> str:
        self.channel.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
        text = (Path(self.tmp.name) / "serve.log").read_text(errors="replace")
        self.tmp.cleanup()
        return text


def export(channel: grpc.Channel, body: bytes) -> tuple[bool, float]:
    call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
    t0 = time.perf_counter()
    try:
        raw = call(body, timeout=30)
        ExportTraceServiceResponse.FromString(raw)
        ok = True
    except grpc.RpcError:
        ok = False
    return ok, time.perf_counter() - t0


def measure_capacity(server: Server, seconds: float, clients: int, spans_per_request: int) -> float:
    stop = time.monotonic() + seconds
    accepted = [0] * clients

    def worker(i: int) -> None:
        pool = BodyPool(random.Random(i), spans_per_request, size=4)
        while time.monotonic() < stop:
            ok, _ = export(server.channel, pool.next_body())
            if ok:
                accepted[i] += spans_per_request
            else:
                time.sleep(0.05)

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(accepted) / (time.monotonic() - t0)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def soak(server: Server, rate_spans_s: float, seconds: float, sample_s: float, spans_per_request: int,
         senders: int = 4) -> dict:
    pool = BodyPool(random.Random(7), spans_per_request)
    interval_s = spans_per_request / rate_spans_s * senders  # per sender thread
    samples: list[dict] = []
    latencies: list[tuple[float, float]] = []  # (elapsed, latency)
    window: list[float] = []
    refused = [0]
    lock = threading.Lock()
    t0 = time.monotonic()
    done = threading.Event()

    def sender(k: int) -> None:
        next_send = t0 + k * interval_s / senders
        while not done.is_set():
            now = time.monotonic()
            if now - t0 >= seconds:
                return
            if now < next_send:
                time.sleep(min(next_send - now, 0.05))
                continue
            ok, lat = export(server.channel, pool.next_body())
            with lock:
                refused[0] += not ok
                latencies.append((now - t0, lat))
                window.append(lat)
            next_send += interval_s
            if next_send < time.monotonic() - 1.0:  # fell behind by more than 1 s: do not burst
                next_send = time.monotonic()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()

    def take_sample() -> None:
        with lock:
            w = list(window)
            window.clear()
        samples.append({"t_s": time.monotonic() - t0, "rss_mib": rss_bytes(server.proc.pid) / 2**20,
                        "p50_ms": percentile(w, 0.5) * 1e3, "p99_ms": percentile(w, 0.99) * 1e3, "requests": len(w)})
        last = samples[-1]
        print(f"  t={last['t_s']:7.1f}s rss={last['rss_mib']:7.1f} MiB p50={last['p50_ms']:6.2f} ms "
              f"p99={last['p99_ms']:6.2f} ms n={last['requests']}", flush=True)

    try:
        take_sample()
        while time.monotonic() - t0 < seconds:
            time.sleep(min(sample_s, max(0.0, seconds - (time.monotonic() - t0))))
            take_sample()
    finally:
        done.set()
        for t in threads:
            t.join(60)
    tenth = seconds / 10
    early = [lat for t, lat in latencies if t < tenth]
    late = [lat for t, lat in latencies if t >= seconds - tenth]
    half = [s for s in samples if s["t_s"] >= seconds / 2]
    slope = 0.0
    if len(half) >= 2:
        xs = [s["t_s"] for s in half]
        ys = [s["rss_mib"] for s in half]
        slope = statistics.linear_regression(xs, ys).slope * 60  # MiB per minute
    return {
        "samples": samples,
        "requests": len(latencies),
        "refused": refused[0],
        "spans_sent": len(latencies) * spans_per_request,
        "achieved_spans_s": len(latencies) * spans_per_request / seconds,
        "rss_start_mib": samples[0]["rss_mib"],
        "rss_max_mib": max(s["rss_mib"] for s in samples),
        "rss_end_mib": samples[-1]["rss_mib"],
        "rss_slope_second_half_mib_per_min": slope,
        "early_p50_ms": percentile(early, 0.5) * 1e3,
        "early_p99_ms": percentile(early, 0.99) * 1e3,
        "late_p50_ms": percentile(late, 0.5) * 1e3,
        "late_p99_ms": percentile(late, 0.99) * 1e3,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration-s", type=float, default=600.0, help="soak duration (default 600 = 10 min)")
    ap.add_argument("--load", type=float, default=0.5, help="fraction of measured capacity to offer (default 0.5)")
    ap.add_argument("--capacity-s", type=float, default=15.0, help="seconds spent measuring capacity")
    ap.add_argument("--clients", type=int, default=4, help="sender threads while measuring capacity")
    ap.add_argument("--spans-per-request", type=int, default=512)
    ap.add_argument("--sample-s", type=float, default=10.0, help="RSS / latency sampling period")
    ap.add_argument("--senders", type=int, default=4, help="paced sender threads during the soak")
    ap.add_argument("--serve-arg", action="append", default=[], help="extra argument for gensight serve (repeatable)")
    args = ap.parse_args(argv)

    serve_args = ["--window-s", "10", *args.serve_arg]
    print(f"capacity: {args.clients} clients x {args.spans_per_request}-span requests for {args.capacity_s:.0f} s")
    server = Server(serve_args)
    try:
        capacity = measure_capacity(server, args.capacity_s, args.clients, args.spans_per_request)
    finally:
        server.stop()
    rate = capacity * args.load
    print(f"  capacity = {capacity:,.0f} spans/s -> soak at {rate:,.0f} spans/s ({args.load:.0%})")

    server = Server(serve_args)  # a fresh process, so the capacity burst does not colour the RSS
    try:
        print(f"soak: {args.duration_s:.0f} s, sampling every {args.sample_s:.0f} s")
        result = soak(server, rate, args.duration_s, args.sample_s, args.spans_per_request, args.senders)
    finally:
        log = server.stop()
    print()
    print(f"offered {rate:,.0f} spans/s, achieved {result['achieved_spans_s']:,.0f} spans/s; "
          f"{result['requests']} requests, {result['refused']} refused")
    print(f"RSS: start {result['rss_start_mib']:.1f} MiB, max {result['rss_max_mib']:.1f} MiB, "
          f"end {result['rss_end_mib']:.1f} MiB, slope over the second half "
          f"{result['rss_slope_second_half_mib_per_min']:+.2f} MiB/min")
    print(f"latency first 10 %: p50 {result['early_p50_ms']:.2f} ms, p99 {result['early_p99_ms']:.2f} ms; "
          f"last 10 %: p50 {result['late_p50_ms']:.2f} ms, p99 {result['late_p99_ms']:.2f} ms; "
          f"drift (late/early) p50 x{result['late_p50_ms'] / result['early_p50_ms']:.2f}, "
          f"p99 x{result['late_p99_ms'] / result['early_p99_ms']:.2f}")
    errors = [line for line in log.splitlines() if "Traceback" in line or " ERROR " in line]
    print(f"server log: {len(errors)} error lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
