"""Replay recorded OTLP spans through the processor pipeline, offline.

Reads OTLP/JSON lines (the Collector ``file`` exporter's format; ``-`` is stdin, ``.gz`` is
accepted) in order through the *same* pipeline as ``gensight serve`` — event time only, no idle
advance — and writes the resulting metrics as OTLP/JSON lines, one ``ExportMetricsServiceRequest``
per line, to ``--output`` or stdout. All open windows are flushed at end of input.
"""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="OTLP JSON lines files ('-' = stdin, .gz ok)")
    parser.add_argument("--config", metavar="FILE", help="processor YAML config (pipeline, series, analytics ...)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write metrics here instead of stdout")
    parser.add_argument("--logs-output", metavar="FILE",
                        help="write alert transitions here as OTLP/JSON logs lines (one ExportLogsServiceRequest per line)")
    parser.add_argument("--window-s", type=float, metavar="N", help="window length in seconds (default 60)")
    parser.add_argument("--state-dir", metavar="DIR", help="analyser state directory (baselines, budgets)")
    parser.add_argument("--reset-state", action="store_true",
                        help="start from empty analytics state; an existing state file is kept as *.bak-<time>")


class JsonLinesSink:
    """A metrics sink writing one OTLP/JSON ``ExportMetricsServiceRequest`` per line."""

    def __init__(self, stream: IO[str], logs_stream: IO[str] | None = None):
        from gensight.processor.decode import logs_request_to_json_line, metrics_request_to_json_line

        self._encode = metrics_request_to_json_line
        self._encode_logs = logs_request_to_json_line
        self._stream = stream
        self._logs_stream = logs_stream
        self.lines = 0
        self.log_lines = 0

    def export_logs(self, request: Any) -> None:
        """Alert transitions (OTLP logs), written only when ``--logs-output`` was given."""
        if self._logs_stream is None or not request.resource_logs:
            return
        self._logs_stream.write(self._encode_logs(request) + "\n")
        self.log_lines += 1

    def export(self, request: Any) -> None:
        if not request.resource_metrics:
            return
        self._stream.write(self._encode(request) + "\n")
        self.lines += 1

    def flush(self) -> None:
        self._stream.flush()
        if self._logs_stream is not None:
            self._logs_stream.flush()


def replay_files(files: list[str], config: Any, sink: Any, *, analysers: Any = None) -> dict[str, int]:
    """Run ``files`` through a replay-mode pipeline into ``sink``; returns counts for the summary."""
    from gensight.processor.decode import BadLine, iter_json_lines
    from gensight.processor.pipeline import Pipeline

    pipeline = Pipeline(config, [sink], live=False, analysers=analysers)
    bad_lines = 0
    requests = 0

    def on_bad(bad: BadLine) -> None:
        nonlocal bad_lines
        bad_lines += 1
        print(f"gensight replay: {bad.source}:{bad.line_no}: skipped: {bad.reason}", file=sys.stderr)

    for name in files:
        for request in iter_json_lines(name, on_bad_line=on_bad):
            requests += 1
            pipeline.submit(request)
    pipeline.close(flush=True)
    return {"requests": requests, "bad_lines": bad_lines, **pipeline.counts}


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gensight.processor.config import ConfigError, load_config

    try:
        config = load_config(args.config).with_values(
            {"pipeline.window_s": args.window_s, "state.dir": args.state_dir,
             "state.reset": True if args.reset_state else None}
        )
    except ConfigError as exc:
        print(f"gensight replay: config error: {exc}", file=sys.stderr)
        return 2
    for name in args.files:
        if name != "-" and not Path(name).is_file():
            print(f"gensight replay: no such file: {name}", file=sys.stderr)
            return 2
    out: IO[str] = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    logs_out: IO[str] | None = open(args.logs_output, "w", encoding="utf-8") if args.logs_output else None  # noqa: SIM115
    try:
        sink = JsonLinesSink(out, logs_out)
        try:
            counts = replay_files(list(args.files), config, sink)
        except ConfigError as exc:
            print(f"gensight replay: config error: {exc}", file=sys.stderr)
            return 2
        sink.flush()
    finally:
        if out is not sys.stdout:
            out.close()
        if logs_out is not None:
            logs_out.close()
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"gensight replay: {summary}; {sink.lines} metric lines", file=sys.stderr)
    return 0
