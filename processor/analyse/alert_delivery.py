"""Alert delivery formats: OTLP log records (``gensight.alert`` events) and the Alertmanager webhook.

Why apart from the engine (``alerts.py``): the state machine decides *when* an on-call engineer is
told; these decide *how* — one OTLP log record per transition (attributes in docs/attributes.md),
and the JSON body Alertmanager sends its webhook receivers (version 4), posted from one daemon
thread with a bounded queue so a slow webhook never blocks the pipeline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from gensight.processor.analyse.alerts import FIRING, PAGE, RESOLVED, TICKET, Transition, WebhookConfig
from gensight.processor.analyse.examples import trace_urls

log = logging.getLogger(__name__)

# OTLP log severity numbers (opentelemetry.proto.logs.v1.SeverityNumber)
_SEVERITY_NUMBER = {(FIRING, PAGE): 17, (FIRING, TICKET): 13}
_SEVERITY_TEXT = {17: "ERROR", 13: "WARN", 9: "INFO"}


# -- OTLP logs ------------------------------------------------------------------------------

def severity_number(t: Transition) -> int:
    return _SEVERITY_NUMBER.get((t.state, t.severity), 9)


def log_attributes(t: Transition) -> list[tuple[str, str | float | tuple[str, ...]]]:
    """Attributes of the log record for a transition (documented in docs/attributes.md)."""
    attrs: list[tuple[str, str | float | tuple[str, ...]]] = [
        ("gensight.alert.name", t.alert),
        ("gensight.alert.state", t.state),
        ("gensight.alert.severity", t.severity),
        ("gensight.alert.series", t.series),
        ("gensight.alert.value", t.value),
        ("gensight.alert.threshold", t.threshold),
        ("runbook_url", t.runbook_url),
        ("gensight.alert.example_trace_ids", t.example_trace_ids),
    ]
    if t.reason:
        attrs.append(("gensight.alert.reason", t.reason))
    attrs.extend((k, v) for k, v in t.attributes if not isinstance(v, bool))  # type: ignore[misc]
    return attrs


def logs_request(transitions: Sequence[Transition]) -> Any:
    """An OTLP ``ExportLogsServiceRequest`` with one log record per transition, grouped by service."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    req = ExportLogsServiceRequest()
    by_service: dict[str, Any] = {}
    for t in transitions:
        svc = t.service or "gensight"
        scope_logs = by_service.get(svc)
        if scope_logs is None:
            rl = req.resource_logs.add()
            rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=svc)))
            scope_logs = rl.scope_logs.add()
            scope_logs.scope.name = "gensight.processor.alerts"
            by_service[svc] = scope_logs
        rec = scope_logs.log_records.add()
        rec.time_unix_nano = t.time_ns
        rec.observed_time_unix_nano = t.time_ns
        num = severity_number(t)
        rec.severity_number = num  # type: ignore[assignment]
        rec.severity_text = _SEVERITY_TEXT[num]
        rec.body.string_value = summary(t)
        rec.event_name = "gensight.alert"
        for k, v in log_attributes(t):
            if isinstance(v, tuple):
                av = AnyValue()
                av.array_value.values.extend(AnyValue(string_value=str(x)) for x in v)
            else:
                av = AnyValue(double_value=v) if isinstance(v, float) else AnyValue(string_value=str(v))
            rec.attributes.append(KeyValue(key=k, value=av))
    return req


def summary(t: Transition) -> str:
    text = f"{t.state.upper()} {t.alert} [{t.severity}] {t.series}: value {t.value:.4g} vs threshold {t.threshold:.4g}"
    why = explanation(t)
    return f"{text} ({why})" if why else text


def explanation(t: Transition) -> str:
    """"error_rate 0.094 vs 0.004": the signal that drove the alert, its window value and its
    baseline value (attributes ``gensight.alert.signal`` / ``.signal_value`` / ``.baseline``), or ""."""
    attrs = dict(t.attributes)
    signal = attrs.get("gensight.alert.signal")
    if not signal:
        return ""
    value, base = attrs.get("gensight.alert.signal_value"), attrs.get("gensight.alert.baseline")
    if isinstance(value, (int, float)) and isinstance(base, (int, float)):
        return f"{signal} {value:.4g} vs {base:.4g}"
    return str(signal)


# -- webhook --------------------------------------------------------------------------------

def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def alertmanager_payload(transitions: Sequence[Transition], receiver: str = "gensight",
                         trace_url_template: str = "") -> dict[str, Any]:
    """The JSON body Alertmanager sends to webhook receivers (version 4), so the same consumers work.
    Example traces ride in the annotations: ``example_trace_ids`` (comma-separated) and, with a
    ``trace_url_template``, ``example_trace_urls`` (space-separated links)."""
    alerts = []
    for t in transitions:
        labels = {"alertname": t.alert, "severity": t.severity, "series": t.series, "service": t.service or "gensight"}
        annotations = {
            "summary": summary(t),
            "value": f"{t.value:.6g}",
            "threshold": f"{t.threshold:.6g}",
            "runbook_url": t.runbook_url,
        }
        if t.example_trace_ids:
            annotations["example_trace_ids"] = ",".join(t.example_trace_ids)
            if trace_url_template:
                annotations["example_trace_urls"] = " ".join(trace_urls(trace_url_template, t.example_trace_ids))
        alerts.append({
            "status": "resolved" if t.state == RESOLVED else "firing",
            "labels": labels,
            "annotations": annotations,
            "startsAt": _rfc3339(t.starts_ns),
            "endsAt": _rfc3339(t.time_ns) if t.state == RESOLVED else "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": hashlib.sha256(f"{t.alert}\x00{t.series}".encode()).hexdigest()[:16],
        })
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": "{}:{alertname=\"gensight\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    }


class WebhookSender:
    """Posts transitions to a webhook from one daemon thread; the queue is bounded, overflow is counted."""

    def __init__(self, config: WebhookConfig, trace_url_template: str = "") -> None:
        self.config = config
        self.trace_url_template = trace_url_template
        self._q: queue.Queue[Transition | None] = queue.Queue(maxsize=config.max_queue)
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="gensight-alert-webhook", daemon=True)
        self._thread.start()

    def submit(self, t: Transition) -> None:
        try:
            self._q.put_nowait(t)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < 100:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._post(batch)
                    return
                batch.append(nxt)
            self._post(batch)

    def _post(self, batch: list[Transition]) -> None:
        body = json.dumps(alertmanager_payload(batch, trace_url_template=self.trace_url_template)).encode()
        for _attempt in range(self.config.max_attempts):
            req = urllib.request.Request(self.config.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:
                    if 200 <= resp.status < 300:
                        self.sent += len(batch)
                        return
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code != 429:
                    break  # permanent
            except (OSError, ValueError) as exc:
                log.debug("alert webhook post failed: %s", exc)
        self.failed += len(batch)
        log.warning("alert webhook: could not deliver %d alert transition(s) to %s", len(batch), self.config.url)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        try:
            self._q.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        self._thread.join(timeout_s)
