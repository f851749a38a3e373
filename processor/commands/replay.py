"""Replay recorded OTLP spans through the processor pipeline, offline.

Reads OTLP/JSON lines (the Collector ``file`` exporter's format; ``-`` is stdin, ``.gz`` is
accepted; trace lines and logs lines — evaluation results — may share one file) in order through the *same* pipeline as ``gensight serve`` — event time only, no idle
advance — and writes the resulting metrics as OTLP/JSON lines, one ``ExportMetricsServiceRequest``
per line, to ``--output`` or stdout. All open windows are flushed at end of input. On a terminal,
a progress bar per file (bytes, spans, spans/s, time left) is drawn on stderr.

Lines are decoded like the receivers decode requests (``receive/lenient.py``): invalid UTF-8 is
replaced, a span that does not decode is rejected on its own (counted ``dropped``, reported on
stderr), and only a line that is not JSON at all, or not a trace request, is skipped whole.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gensight.processor.export.sink import SplitSink


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="OTLP JSON lines files ('-' = stdin, .gz ok)")
    parser.add_argument("--config", metavar="FILE", help="processor YAML config (pipeline, series, analytics ...)")
    parser.add_argument("--output", "-o", metavar="FILE", help="write metrics here instead of stdout")
    parser.add_argument("--window-s", type=float, metavar="N", help="window length in seconds (default 60)")
    parser.add_argument("--state-dir", metavar="DIR", help="analyser state directory (baselines, budgets)")
    parser.add_argument("--logs-output", metavar="FILE",
                        help="write alert transitions here as OTLP/JSON logs lines (one ExportLogsServiceRequest per line)")
    parser.add_argument("--reset-state", action="store_true",
                        help="start from empty analytics state; an existing state file is kept as *.bak-<time>")


class ReplaySink(SplitSink):
    """Metrics to one sink (a JSON-lines file); alert log records to another (or nowhere)."""


def replay_files(files: list[str], config: Any, sink: Any, *, analysers: Any = None,
                 progress: bool | None = None) -> dict[str, int]:
    """Run ``files`` through a replay-mode pipeline into ``sink``; returns counts for the summary.
    ``progress``: draw progress bars (None: when stderr is a terminal)."""
    from gensight.processor.commands.progress import read_decoded
    from gensight.processor.pipeline.pipeline import Pipeline
    from gensight.processor.receive.json_lines import BadLine

    pipeline = Pipeline(config, [sink], live=False, analysers=analysers)
    bad_lines = 0
    requests = 0

    def on_bad(bad: BadLine) -> None:
        nonlocal bad_lines
        bad_lines += 1
        print(f"gensight replay: {bad.source}:{bad.line_no}: skipped: {bad.reason}", file=sys.stderr)

    for name, line_no, decoded in read_decoded(files, on_bad_line=on_bad, progress=progress):
        requests += 1
        if hasattr(decoded.request, "resource_logs"):  # evaluation results as OTLP log records
            pipeline.submit_logs(decoded.request)
            continue
        if decoded.defects is not None:
            print(f"gensight replay: {name}:{line_no}: {decoded.defects.message}", file=sys.stderr)
        pipeline.submit(decoded.request, decoded.raw, decoded.defects)
    pipeline.close(flush=True)
    return {"requests": requests, "bad_lines": bad_lines, **pipeline.counts}


def run(args: argparse.Namespace) -> int:
    from gensight.processor.config import ConfigError, load_config

    try:
        config = load_config(args.config).with_values(
            {"pipeline.window_s": args.window_s, "state.dir": args.state_dir,
             "state.reset": True if args.reset_state else None}
        )
    except ConfigError as exc:
        print(f"gensight replay: config error: {exc}", file=sys.stderr)
        return 2
    from gensight.processor.commands.progress import missing_file

    if (missing := missing_file(list(args.files))) is not None:
        print(f"gensight replay: no such file: {missing}", file=sys.stderr)
        return 2
    from gensight.processor.export.jsonlines import JsonLinesSink
    from gensight.processor.server import tune_gc

    tune_gc()
    metrics = JsonLinesSink(args.output or "-", append=False)
    logs = JsonLinesSink(args.logs_output, append=False) if args.logs_output else None
    sink = ReplaySink(metrics, logs)
    try:
        # metrics printed to the terminal itself would tear a bar apart: no bar then
        to_terminal = (args.output or "-") == "-" and sys.stdout.isatty()
        counts = replay_files(list(args.files), config, sink, progress=False if to_terminal else None)
    except ConfigError as exc:
        print(f"gensight replay: config error: {exc}", file=sys.stderr)
        return 2
    finally:
        sink.shutdown()
    lines = metrics.lines_written
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    print(f"gensight replay: {summary}; {lines} metric lines", file=sys.stderr)
    return 0
