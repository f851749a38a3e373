"""Run the Gensight processor: OTLP receivers → pipeline → OTLP metrics export (+ Prometheus).

The export endpoint comes from ``--export-endpoint``, the config file's ``export.endpoint``, or
the standard ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT`` variables.
SIGTERM / SIGINT stop the receivers, drain the queue, flush open windows, export, and run the
analysers' snapshot/shutdown hooks.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from typing import Any

from gensight.processor.server import ProcessorServer, tune_gc

logger = logging.getLogger("gensight.processor.commands.serve")

def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="processor YAML config")
    parser.add_argument("--grpc-endpoint", metavar="HOST:PORT", help="OTLP/gRPC receiver (default 127.0.0.1:4317)")
    parser.add_argument("--http-endpoint", metavar="HOST:PORT", help="OTLP/HTTP receiver (default 127.0.0.1:4318)")
    parser.add_argument("--window-s", type=float, metavar="N", help="event-time window length in seconds (default 60)")
    parser.add_argument("--state-dir", metavar="DIR", help="analyser state directory (SQLite)")
    parser.add_argument("--reset-state", action="store_true",
                        help="start from empty analytics state; an existing state file is kept as *.bak-<time>")
    parser.add_argument("--prometheus-endpoint", metavar="HOST:PORT", help="serve /metrics for Prometheus here")
    parser.add_argument("--ui-endpoint", metavar="HOST:PORT",
                        help="serve the read-only status page here (off by default; token from $GENSIGHT_UI_TOKEN)")
    parser.add_argument("--export-endpoint", metavar="URL", help="OTLP metrics endpoint (else OTEL_EXPORTER_OTLP_* env)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def cli_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "receivers.grpc.endpoint": args.grpc_endpoint,
        "receivers.http.endpoint": args.http_endpoint,
        "pipeline.window_s": args.window_s,
        "state.dir": args.state_dir,
        "state.reset": True if getattr(args, "reset_state", False) else None,
        "prometheus.endpoint": args.prometheus_endpoint,
        "export.endpoint": args.export_endpoint,
        "ui.endpoint": getattr(args, "ui_endpoint", None),
    }


def run(args: argparse.Namespace) -> int:
    import signal

    from gensight.processor.config import ConfigError, load_config

    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config).with_values(cli_overrides(args))
        server = ProcessorServer(config)
    except ConfigError as exc:
        print(f"gensight serve: config error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        logger.info("gensight serve: signal %d, shutting down", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server.start()
    except OSError as exc:
        print(f"gensight serve: {exc}", file=sys.stderr)
        return 1
    tune_gc()
    ports = ", ".join(
        f"{name} {port}"
        for name, port in (("grpc", server.grpc_port), ("http", server.http_port), ("prometheus", server.prometheus_port),
                           ("ui", server.ui_port))
        if port
    )
    print(f"gensight serve: listening ({ports})", file=sys.stderr, flush=True)
    if server.ui_url:
        print(f"gensight serve: status page {server.ui_url}", file=sys.stderr, flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    print("gensight serve: stopped", file=sys.stderr, flush=True)
    return 0
