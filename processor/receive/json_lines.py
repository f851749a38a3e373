"""JSON-lines span files (the Collector ``file`` exporter's format): what ``gensight replay``,
``compare`` and ``pricing check`` read.

Why apart from ``decode``: a file is read line by line with its own bounds (line length, gzip
detected by magic bytes, stdin), and a bad line is reported and skipped, never fatal; ``decode``
turns one request's bytes into a message.
"""

from __future__ import annotations

import gzip as _gzip
import io
import logging
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from gensight.processor.receive.decode import (
    _CHUNK_BYTES,
    _GZIP_MAGIC,
    DecodeError,
    _short,
    json_loads,
    trace_request_from_dict,
)

_log = logging.getLogger(__name__)

# One line of a JSON-lines file may be at most this big (the Collector file exporter writes one
# request per line; a batch of 8192 spans is a few MiB).
DEFAULT_MAX_LINE_BYTES = 256 * 1024 * 1024


class BadLine(NamedTuple):
    """A line of a JSON-lines input that was skipped, and why."""

    source: str
    line_no: int  # 1-based
    reason: str


# --------------------------------------------------------------------------- gzip


def iter_json_lines(
    source: str | Path | IO[bytes],
    *,
    on_bad_line: Callable[[BadLine], None] | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    logs: bool = False,
) -> Iterator[ExportTraceServiceRequest]:
    """Yield one ExportTraceServiceRequest per non-empty line of a Collector ``file`` exporter output.

    ``source`` is a path, ``"-"`` for stdin, or a binary file object. Gzip input (``.gz`` or gzip
    magic bytes) is decompressed on the fly. A line that cannot be decoded, that is longer than
    ``max_line_bytes``, or that holds no ``resourceSpans`` (a metrics or logs line in a traces
    file) is reported through ``on_bad_line`` and skipped; reading continues with the next line.
    Strict: ``lenient.iter_decoded_lines`` is the same reading with per-span defects tolerated.
    With ``logs=True`` a ``resourceLogs`` line is yielded as an ``ExportLogsServiceRequest``
    (evaluation results travel as log records; replay reads both from one file).
    """
    report = on_bad_line or log_bad_line
    for name, line_no, line in read_lines(source, report, max_line_bytes):
        try:
            obj = json_loads(line)
            if logs and isinstance(obj, dict) and ("resourceLogs" in obj or "resource_logs" in obj):
                from gensight.processor.receive.logs import logs_request_from_dict

                req: Any = logs_request_from_dict(obj)
            else:
                if isinstance(obj, dict) and not any(k in obj for k in ("resourceSpans", "resource_spans")):
                    raise DecodeError("no resourceSpans: not an ExportTraceServiceRequest line")
                req = trace_request_from_dict(obj)
        except DecodeError as exc:
            report(BadLine(name, line_no, exc.message))
            continue
        except RecursionError:
            report(BadLine(name, line_no, "invalid JSON: nesting too deep"))
            continue
        except ValueError as exc:
            report(BadLine(name, line_no, f"invalid JSON: {_short(exc)}"))
            continue
        yield req


def read_lines(
    source: str | Path | IO[bytes], report: Callable[[BadLine], None], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[str, int, bytes]]:
    """(source name, 1-based line number, stripped line) of each non-empty line of ``source``
    (path, ``"-"`` = stdin, or a binary file object; gzip detected). Over-long lines and read
    errors are reported as ``BadLine`` s; the latter end the source."""
    name, stream, closers = _open_source(source)
    line_no = 0
    try:
        while True:
            line = stream.readline(max_line_bytes + 1)
            if not line:
                return
            line_no += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                # skip the rest of this oversized line without holding it in memory
                while True:
                    rest = stream.readline(_CHUNK_BYTES)
                    if not rest or rest.endswith(b"\n"):
                        break
                report(BadLine(name, line_no, f"line longer than {max_line_bytes} bytes"))
                continue
            stripped = line.strip()
            if stripped:
                yield name, line_no, stripped
    except (OSError, EOFError, zlib.error) as exc:
        # a truncated/corrupt .gz or an I/O error ends this source, reported like a bad line
        report(BadLine(name, line_no + 1, f"cannot read further: {_short(exc)}"))
    finally:
        for item in closers:
            item.close()


def log_bad_line(bad: BadLine) -> None:
    """The default ``on_bad_line``: a warning in the log."""
    _log.warning("%s:%d: skipped: %s", bad.source, bad.line_no, bad.reason)


def _open_source(source: str | Path | IO[bytes]) -> tuple[str, IO[bytes], list[Any]]:
    """(display name, binary stream, things to close afterwards, innermost last)."""
    closers: list[Any] = []
    if isinstance(source, (str, Path)):
        if str(source) == "-":
            raw: IO[bytes] = sys.stdin.buffer
            name = "<stdin>"
        else:
            raw = open(source, "rb")  # noqa: SIM115 - closed through ``closers``
            closers.append(raw)
            name = str(source)
    else:
        raw, name = source, str(getattr(source, "name", "<stream>"))
    buffered: Any = raw if hasattr(raw, "peek") else io.BufferedReader(_Raw(raw))
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        gz = _gzip.GzipFile(fileobj=buffered, mode="rb")
        closers.insert(0, gz)
        return name, io.BufferedReader(_Raw(gz)), closers
    return name, buffered, closers


class _Raw(io.RawIOBase):
    """Adapts any readable binary object to RawIOBase so BufferedReader can peek at it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._inner.read(len(b))
        n = len(data)
        b[:n] = data
        return n



# --------------------------------------------------------------------------- OTLP/JSON out
