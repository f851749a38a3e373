"""OTLP/HTTP ingestion through the real ``HttpReceiver``, before and after a change, in one run.

Each variant is a server process that imports gensight from a source tree and runs ``HttpReceiver``
on loopback with a consumer that counts the spans delivered to it (no pipeline: this measures the
HTTP layer plus decoding). This process is the client: ``--clients`` threads, each a keep-alive
``http.client`` connection posting ``--requests`` real protobuf ``ExportTraceServiceRequest``s of
``--spans`` GenAI spans. Throughput = spans delivered to the consumer / wall time of the load; server CPU = the server
process's CPU time during the load / spans delivered (steadier than throughput on a shared machine:
it does not depend on how much CPU the other processes leave).
Variants alternate within each round; ratios are to the baseline of the same round.

Variants:
  baseline        the tree given by ``--baseline-tree`` (a ``git worktree`` of main, with the
                  normaliser's ``_spanscan`` built or copied in)
  current         this tree
  current-workers this tree with every request decoded and delivered on the server's worker threads
                  (``INLINE_MAX_BYTES`` = 0), the alternative to the decision in
                  ``receive/http_receiver.py`` (small uncompressed bodies on the event loop)

``--gzip`` sends the requests gzipped (as the Collector's otlphttp exporter does by default).
``--pipeline`` runs a whole ``ProcessorServer`` (HTTP receiver only, no sinks) instead of a
counting consumer: throughput is then spans through the pipeline (every outcome counted) per wall
second until the last one is processed -- ingestion as a user sees it.

    git worktree add --detach /tmp/gensight-main main
    nice python bench/http_ingest.py --baseline-tree /tmp/gensight-main [--rounds 5] [--clients 4]
        [--requests 100] [--spans 512]
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = (("gensight", "core"), ("gensight.instrumentation", "instrumentation"), ("gensight.processor", "processor"))


# -- the server process ----------------------------------------------------------------------------


def import_tree(root: str) -> None:
    """Make ``gensight`` come from ``root`` (its package-dir mapping), not from the installed one."""
    sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
    for name in [m for m in sys.modules if m == "gensight" or m.startswith("gensight.")]:
        del sys.modules[name]
    for name, folder in PACKAGES:
        path = os.path.join(root, folder)
        spec = importlib.util.spec_from_file_location(name, os.path.join(path, "__init__.py"),
                                                      submodule_search_locations=[path])
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


def serve(root: str, workers_only: bool, pipeline: bool) -> None:
    import_tree(root)
    from gensight.processor.receive import http_receiver
    from gensight.processor.receive.admission import ACCEPTED, count_spans
    from gensight.processor.receive.http_receiver import HttpReceiver, HttpReceiverConfig

    if workers_only:
        http_receiver.INLINE_MAX_BYTES = 0  # type: ignore[attr-defined]
    if pipeline:
        serve_pipeline()
        return

    delivered = [0]
    lock = threading.Lock()

    def consume(request: Any, raw: bytes | None = None, defects: Any = None) -> Any:
        n = count_spans(request)
        with lock:
            delivered[0] += n
        return ACCEPTED

    cfg = HttpReceiverConfig(endpoint="127.0.0.1:0")
    cfg.validate()
    rx = HttpReceiver(cfg, consume)
    rx.start()
    print(rx.port, os.path.dirname(os.path.dirname(os.path.dirname(http_receiver.__file__ or ""))), flush=True)
    for line in sys.stdin:  # "count" -> delivered spans so far and the process's CPU seconds; EOF -> stop
        if line.strip() == "count":
            print(delivered[0], time.process_time(), flush=True)
    rx.stop(1.0)


def serve_pipeline() -> None:
    from gensight.processor.config import config_from_mapping
    from gensight.processor.server import ProcessorServer

    cfg = config_from_mapping({"receivers": {"grpc": None, "http": {"endpoint": "127.0.0.1:0"}},
                               "queue": {"max_spans": 4_000_000, "max_items": 100_000},
                               "pipeline": {"idle_tick_s": 0.05}})
    server = ProcessorServer(cfg, sinks=[])
    server.start()
    from gensight.processor.receive import http_receiver

    print(server.http_port, os.path.dirname(os.path.dirname(os.path.dirname(http_receiver.__file__ or ""))), flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            with server.pipeline._lock:
                processed = sum(server.pipeline.counts.values())
            print(processed, time.process_time(), flush=True)
    server.stop()


# -- the client ------------------------------------------------------------------------------------


def payload(spans: int) -> bytes:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    now_ns = time.time_ns()
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value="bench")))
    ss = rs.scope_spans.add()
    for i in range(spans):
        s = ss.spans.add(name="chat gpt-4o-mini", trace_id=(i + 1).to_bytes(16, "big"),
                         span_id=(i + 1).to_bytes(8, "big"))
        s.start_time_unix_nano = now_ns - 2_000_000_000 + i * 1_000  # recent: live windows accept them
        s.end_time_unix_nano = s.start_time_unix_nano + 500_000_000
        for k, v in (("gen_ai.operation.name", "chat"), ("gen_ai.provider.name", "openai"),
                     ("gen_ai.request.model", "gpt-4o-mini"), ("server.address", "api.openai.com")):
            s.attributes.append(KeyValue(key=k, value=AnyValue(string_value=v)))
        for k, n in (("gen_ai.usage.input_tokens", 120), ("gen_ai.usage.output_tokens", 40)):
            s.attributes.append(KeyValue(key=k, value=AnyValue(int_value=n)))
    return req.SerializeToString()


class Server:
    def __init__(self, root: str, workers_only: bool = False, pipeline: bool = False) -> None:
        args = [sys.executable, os.path.abspath(__file__), "--serve", root]
        args += (["--workers-only"] if workers_only else []) + (["--pipeline"] if pipeline else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        port, self.tree = self.proc.stdout.readline().split(" ", 1)
        self.port = int(port)
        self.tree = self.tree.strip()

    def delivered(self) -> tuple[int, float]:
        """(spans delivered so far, CPU seconds the server process has used)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        spans, cpu_s = self.proc.stdout.readline().split()
        return int(spans), float(cpu_s)

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def drive(port: int, body: bytes, clients: int, requests: int, headers: dict[str, str]) -> float:
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            for _ in range(requests):
                conn.request("POST", "/v1/traces", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(str(resp.status))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(f"non-200 answers: {errors[:5]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-tree", help="source tree of the baseline (e.g. a git worktree of main)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=100, help="per client")
    ap.add_argument("--spans", type=int, default=512, help="per request")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--gzip", action="store_true", help="send the requests gzipped")
    ap.add_argument("--pipeline", action="store_true", help="a whole ProcessorServer instead of a counting consumer")
    ap.add_argument("--workers-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.workers_only, args.pipeline)
        return
    if not args.baseline_tree:
        ap.error("--baseline-tree is required")
    variants = {"baseline": (args.baseline_tree, False), "current": (HERE, False), "current-workers": (HERE, True)}
    body = payload(args.spans)
    headers = {"Content-Type": "application/x-protobuf"}
    if args.gzip:
        import gzip

        body = gzip.compress(body, mtime=0)
        headers["Content-Encoding"] = "gzip"
    sent = args.clients * args.requests * args.spans
    rates: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}  # server CPU microseconds per span
    trees: dict[str, str] = {}
    for _ in range(args.rounds):
        for name, (root, workers_only) in variants.items():
            server = Server(root, workers_only, args.pipeline)
            try:
                drive(server.port, body, args.clients, 3, headers)  # warm up: connections, caches
                warm_deadline = time.perf_counter() + 60
                while server.delivered()[0] < args.clients * 3 * args.spans and time.perf_counter() < warm_deadline:
                    time.sleep(0.01)  # the pipeline has processed the warm-up
                spans_before, cpu_before = server.delivered()
                started = time.perf_counter()
                drive(server.port, body, args.clients, args.requests, headers)
                spans_after, cpu_after = server.delivered()
                while spans_after - spans_before < sent and time.perf_counter() - started < 300:
                    time.sleep(0.01)  # the pipeline processes what the receiver admitted
                    spans_after, cpu_after = server.delivered()
                elapsed = time.perf_counter() - started
                delivered = spans_after - spans_before
                trees[name] = server.tree
            finally:
                server.stop()
            if delivered != sent:  # every request answered 200 (drive checks), every span counted
                raise RuntimeError(f"{name}: {delivered} spans delivered of {sent} sent")
            rates[name].append(delivered / elapsed)
            cpu[name].append((cpu_after - cpu_before) / delivered * 1e6)
    print(f"{len(body)} B {'gzipped ' if args.gzip else ''}requests of {args.spans} spans, {args.clients} keep-alive clients x {args.requests}, "
          f"{args.rounds} rounds; ratio = median over rounds of variant / baseline of the same round")
    for name, r in rates.items():
        ratios = [x / b for x, b in zip(r, rates["baseline"], strict=True)]
        cpu_ratios = [x / b for x, b in zip(cpu[name], cpu["baseline"], strict=True)]
        print(f"{name:15s} {statistics.median(r) / 1e3:8.1f} k spans/s  ratio {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f})  server CPU {statistics.median(cpu[name]):.2f} us/span  "
              f"ratio {statistics.median(cpu_ratios):.2f} ({min(cpu_ratios):.2f}-{max(cpu_ratios):.2f})  "
              f"[{trees[name]}]")


if __name__ == "__main__":
    main()
