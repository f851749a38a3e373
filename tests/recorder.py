"""A trivial trace consumer for receiver tests (the gRPC and the OTLP/HTTP receiver alike)."""

from __future__ import annotations

import threading

from gensight.processor.receive.admission import ACCEPTED, Admission, count_spans


class Recorder:
    """Records the requests it is handed; answers from a script of admissions, then ACCEPTED."""

    def __init__(self, *script: Admission) -> None:
        self.requests: list = []
        self.defects: list = []  # what lenient decoding reported with each request (None: nothing)
        self.script = list(script)
        self.lock = threading.Lock()

    def __call__(self, request, raw=None, defects=None):
        with self.lock:
            self.requests.append(request)
            self.defects.append(defects)
            admission = self.script.pop(0) if self.script else ACCEPTED
        if defects is not None and admission.accepted:
            rejected, message = defects.fold(admission.rejected_spans, admission.error_message)
            admission = admission._replace(rejected_spans=rejected, error_message=message)
        return admission

    @property
    def spans(self) -> int:
        return sum(count_spans(r) for r in self.requests)
