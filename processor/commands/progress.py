"""Reading recorded span files with a progress bar when someone is watching.

``gensight replay`` and ``gensight compare`` read files of hundreds of MB; a day of spans took over
a minute, silently. :func:`read_requests` yields the ``ExportTraceServiceRequest`` s of each file
(:func:`gensight.processor.receive.json_lines.iter_json_lines` does the decoding; :func:`read_decoded`
decodes leniently, as the receivers do) and, when stderr is a
terminal and ``rich`` is installed, shows one bar per file: bytes read of the file's size (the
compressed size for ``.gz``), spans read, spans/s and time left. When stderr is not a terminal
(pipes, CI, tests) nothing extra is written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

__all__ = ["missing_file", "read_decoded", "read_requests", "show_progress"]

# redraw at most this often: a bar must not slow the reading it reports
_REFRESH_PER_S = 4


def show_progress(stream: IO[str] | None = None) -> bool:
    """True when ``stream`` (default stderr) is a terminal and ``rich`` is importable."""
    stream = sys.stderr if stream is None else stream
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):  # closed or replaced stream
        return False
    try:
        import rich.progress  # noqa: F401
    except ImportError:
        return False
    return True


def missing_file(files: list[str]) -> str | None:
    """The first of ``files`` that is not a readable file ("-" = stdin always is), else None."""
    return next((name for name in files if name != "-" and not Path(name).is_file()), None)


def _span_count(request: Any) -> int:
    """Spans of a trace request; 0 for a logs request (evaluation results)."""
    return sum(len(ss.spans) for rs in getattr(request, "resource_spans", ()) for ss in rs.scope_spans)


def read_requests(files: list[str], *, on_bad_line: Callable[[Any], None] | None = None,
                  progress: bool | None = None) -> Iterator[Any]:
    """Every request of ``files`` in order ("-" = stdin): trace requests and, for evaluation
    results, logs requests; a progress bar per file on a terminal."""
    from gensight.processor.receive.json_lines import iter_json_lines

    def reader(source: Any, name: str) -> Iterator[Any]:
        return iter_json_lines(source, on_bad_line=on_bad_line, logs=True)

    yield from _read(files, reader, _span_count, progress)


def read_decoded(files: list[str], *, on_bad_line: Callable[[Any], None] | None = None,
                 progress: bool | None = None) -> Iterator[tuple[str, int, Any]]:
    """``read_requests`` decoding leniently (``receive/lenient.py``: invalid UTF-8 repaired, a bad
    span rejected alone): (file name, line number, ``Decoded``) per request."""
    from gensight.processor.receive.lenient import iter_decoded_lines

    def reader(source: Any, name: str) -> Iterator[tuple[str, int, Any]]:
        return ((name, line_no, decoded) for line_no, decoded in iter_decoded_lines(source, on_bad_line=on_bad_line))

    yield from _read(files, reader, lambda item: _span_count(item[2].request), progress)


def _read(files: list[str], reader: Callable[[Any, str], Iterator[Any]], spans_of: Callable[[Any], int],
          progress: bool | None) -> Iterator[Any]:
    if progress is None:
        progress = show_progress()
    if not progress:
        for name in files:
            yield from reader(name, name)
        return
    yield from _read_with_bars(files, reader, spans_of)


def _read_with_bars(files: list[str], reader: Callable[[Any, str], Iterator[Any]],
                    spans_of: Callable[[Any], int]) -> Iterator[Any]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), DownloadColumn(),
        TextColumn("{task.fields[spans]:,} spans"), TextColumn("{task.fields[rate]:,.0f} spans/s"),
        TimeRemainingColumn(),
    )
    console = Console(file=sys.stderr)
    with Progress(*columns, console=console, refresh_per_second=_REFRESH_PER_S,
                  redirect_stdout=False) as bars:
        for name in files:
            with ExitStack() as stack:
                if name == "-":
                    source: Any = "-"
                    total = None
                else:
                    source = stack.enter_context(open(name, "rb", buffering=0))  # noqa: SIM115
                    total = Path(name).stat().st_size
                task = bars.add_task(Path(name).name if name != "-" else "<stdin>", total=total, spans=0, rate=0.0)
                spans = 0
                for item in reader(source, name):
                    spans += spans_of(item)
                    elapsed = bars.tasks[task].elapsed or 0.0
                    done = source.tell() if name != "-" else None
                    bars.update(task, completed=done, spans=spans, rate=spans / elapsed if elapsed > 0 else 0.0)
                    yield item
                bars.update(task, completed=total, spans=spans)
