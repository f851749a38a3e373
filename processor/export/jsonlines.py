"""OTLP/JSON lines file sink: one ``ExportMetricsServiceRequest`` / logs request per line.

Why a sink of its own: ``gensight replay --output`` and the demo write what a Collector's
``file`` exporter would, so the same tools read both.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import IO, Any

from gensight.processor.export.otlp_transport import count_items
from gensight.processor.export.sink import Sink
from gensight.processor.receive.decode import message_to_otlp_json


class JsonLinesSink(Sink):
    """Writes each request as one OTLP/JSON line (replay ``--output``, the demo, debugging).

    ``target`` is a path (appended to), ``"-"`` for stdout, or a text stream. Accepts metrics and
    logs requests; each line is the OTLP/JSON encoding (hex ids, camelCase, integer enums).
    """

    def __init__(self, target: str | os.PathLike[str] | IO[str], *, append: bool = True) -> None:
        self._lock = threading.Lock()
        self._owned = False
        if isinstance(target, (str, os.PathLike)):
            if str(target) == "-":
                self._stream: IO[str] | None = sys.stdout
            else:
                self._stream = open(target, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
                self._owned = True
        else:
            self._stream = target
        self.lines_written = 0

    def export(self, request: Any) -> bool:
        count_items(request)  # type check: metrics or logs requests only
        line = json.dumps(message_to_otlp_json(request), separators=(",", ":"))
        with self._lock:
            if self._stream is None:
                return False
            self._stream.write(line + "\n")
            self.lines_written += 1
        return True

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        with self._lock:
            if self._stream is not None:
                self._stream.flush()
        return True

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        with self._lock:
            if self._stream is not None:
                self._stream.flush()
                if self._owned:
                    self._stream.close()
                self._stream = None
        return True

