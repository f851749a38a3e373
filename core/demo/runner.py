"""The demo's orchestration: start the parts, drive the clock and the incident, feed the view.

Data flows one way, as in production::

    service processes (openai SDK + Gensight instrumentation, OTLPSpanExporter/gRPC)
        -> gensight serve receiver (in this process) -> pipeline -> OTLP/JSON metrics file
                                                              \\-> window listener -> DemoView -> renderer
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gensight.demo.render import RunInfo, live_view, summary_lines, window_line
from gensight.demo.scenario import (
    NS_PER_S,
    SERVICES,
    EventClock,
    IncidentSchedule,
    incident_at_fraction,
    make_clock,
    services_using,
    simulated_windows,
)
from gensight.demo.view import DemoView, windows_from_request
from gensight.processor.export.sink import Sink
from gensight.processor.points import MetricPoint, Window

SERVICE_START_TIMEOUT_S = 60.0  # importing openai + OTel on a loaded machine can take a while
SERVICE_STOP_TIMEOUT_S = 30.0
START_DELAY_S = 0.5  # wall-clock margin so every service is waiting when the clock starts
LIVE_REFRESH_S = 0.25
ALERT_LOG_LINES = 6


@dataclass(frozen=True)
class DemoConfig:
    duration_s: float
    speed: float
    window_s: float
    seed: int
    output: Path
    workdir: Path
    live: bool
    services: tuple[str, ...] = SERVICES
    allowed_lateness_s: float | None = None  # event time; default below
    ui_endpoint: str | None = None  # the status page (HOST:PORT); None = off

    def lateness_s(self) -> float:
        """Allowed lateness in event time: a second of wall clock (span batching, gRPC, a busy
        machine), which compression turns into ``speed`` seconds, and at least a quarter window."""
        if self.allowed_lateness_s is not None:
            return self.allowed_lateness_s
        return max(self.speed * 1.0, self.window_s / 4)


class ServiceProcess:
    """One demo service subprocess and its stderr log."""

    def __init__(self, service: str, seed: int, provider_url: str, otlp_endpoint: str, log_path: Path) -> None:
        self.service = service
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = dict(os.environ)
        env.pop("OTEL_SDK_DISABLED", None)
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "gensight.demo.service",
                "--service", service, "--seed", str(seed),
                "--provider-url", provider_url, "--otlp-endpoint", otlp_endpoint,
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env,
        )

    def wait_ready(self, deadline: float) -> None:
        assert self.proc.stdout is not None
        ready: list[bytes] = []
        reader = threading.Thread(target=lambda: ready.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(max(0.0, deadline - time.monotonic()))
        if not ready or ready[0].strip() != b"ready":
            raise RuntimeError(f"demo service {self.service} did not start:\n{self.log_tail()}")

    def start(self, clock: EventClock, end_wall_ns: int) -> None:
        assert self.proc.stdin is not None
        line = json.dumps(
            {"wall_base_ns": clock.wall_base_ns, "event_base_ns": clock.event_base_ns,
             "speed": clock.speed, "end_wall_ns": end_wall_ns}
        )
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def log_tail(self, lines: int = 20) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float) -> int | None:
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return None
        finally:
            self._log.close()


class DemoRunner(Sink):
    def __init__(self, config: DemoConfig, out: IO[str] | None = None) -> None:
        self.config = config
        self.out = out or sys.stdout
        self.windows: queue.Queue[tuple[Window, list[MetricPoint]]] = queue.Queue()
        self.alert_log: deque[str] = deque(maxlen=ALERT_LOG_LINES)  # latest alert transitions
        self.alert_transitions = 0
        self.logs_sink: Any = None  # OTLP/JSON lines of the alert transitions (log records)
        self.straggler_windows = 0
        self.event_end_ns = 0

    # the processor's export stage calls this (its worker thread) for every exported request
    def export(self, request: Any) -> bool:
        for window, points in windows_from_request(request, int(self.config.window_s * NS_PER_S)):
            self.windows.put((window, points))
        return True

    # ... and this for alert transitions, exported as OTLP log records
    def export_logs(self, request: Any) -> bool:
        if self.logs_sink is not None:
            self.logs_sink.export(request)
        for rl in request.resource_logs:
            for sl in rl.scope_logs:
                for record in sl.log_records:
                    self.alert_transitions += 1
                    self.alert_log.append(record.body.string_value)
        return True

    @property
    def alerts_path(self) -> Path:
        return self.config.output.with_name(self.config.output.stem.split(".")[0] + ".alerts.otlp.jsonl")

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    def run(self) -> int:
        from gensight.demo.parts import metrics_file_sink, start_fake_provider, start_processor

        cfg = self.config
        started = time.monotonic()
        state_dir = cfg.workdir / "state"
        state_dir.mkdir(parents=True, exist_ok=True)
        provider = start_fake_provider(
            seed=cfg.seed, latency_scale=1.0 / cfg.speed, log_path=cfg.workdir / "fake-provider.log"
        )
        windows_total = simulated_windows(cfg.duration_s, cfg.speed, cfg.window_s)
        file_sink = metrics_file_sink(cfg.output)
        self.logs_sink = metrics_file_sink(self.alerts_path)
        try:
            processor = start_processor(
                state_dir=state_dir, window_s=cfg.window_s, lateness_s=cfg.lateness_s(),
                sinks=[self, file_sink], windows_total=windows_total, ui_endpoint=cfg.ui_endpoint,
            )
        except BaseException:
            file_sink.shutdown()
            self.logs_sink.shutdown()
            provider.stop()
            raise
        if processor.ui_url:
            self._print(f"gensight demo: status page {processor.ui_url}")
        services: list[ServiceProcess] = []
        try:
            for name in cfg.services:
                services.append(
                    ServiceProcess(name, cfg.seed, provider.base_url, processor.grpc_endpoint,
                                   cfg.workdir / f"{name}.log")
                )
            deadline = time.monotonic() + SERVICE_START_TIMEOUT_S
            for svc in services:
                svc.wait_ready(deadline)
            now_ns = time.time_ns() + int(START_DELAY_S * NS_PER_S)
            clock = make_clock(now_ns, cfg.duration_s, cfg.speed, cfg.window_s)
            # the run ends on a window boundary (duration rounded up to whole windows)
            end_wall_ns = clock.wall_ns(clock.event_base_ns + int(windows_total * cfg.window_s * NS_PER_S))
            self.event_end_ns = clock.event_ns(end_wall_ns)
            incident = incident_at_fraction(clock, windows_total * cfg.window_s / cfg.speed, window_s=cfg.window_s)
            info = RunInfo(
                event_base_ns=clock.event_base_ns,
                event_end_ns=clock.event_ns(end_wall_ns),
                window_s=cfg.window_s,
                speed=cfg.speed,
                incident_start_ns=incident.start_event_ns,
                incident_model=incident.model,
                incident_text=(
                    f"{incident.model} latency x{incident.latency_factor:g}, "
                    f"output tokens x{incident.token_factor:g}"
                ),
                services=cfg.services,
            )
            view = DemoView(incident.start_event_ns, incident.model, services_using(incident.model))
            if not cfg.live:
                self._print(
                    f"gensight demo: {len(services)} services ({', '.join(cfg.services)}) -> OTLP/gRPC "
                    f"{processor.grpc_endpoint} -> processor; {info.minute(info.event_end_ns)} of event time "
                    f"in {cfg.duration_s:g} s (x{cfg.speed:g}), windows of {cfg.window_s:g} s; incident: "
                    f"{info.incident_text} at {info.minute(incident.start_event_ns)}"
                )
            for svc in services:
                svc.start(clock, end_wall_ns)
            self._drive(view, info, clock, incident, provider, end_wall_ns, services, processor)
        finally:
            for svc in services:
                if svc.proc.poll() is None:
                    svc.stop(SERVICE_STOP_TIMEOUT_S)
            processor.stop()  # idempotent
            self.logs_sink.shutdown()
            provider.stop()
            shutil.rmtree(state_dir, ignore_errors=True)
        for line in summary_lines(view, info, str(cfg.output), time.monotonic() - started):
            self._print(line)
        self._print(f"alert transitions ({self.alert_transitions}) as OTLP/JSON log records: {self.alerts_path}")
        if self.straggler_windows:
            self._print(
                f"({self.straggler_windows} window(s) after the end held only requests still in flight: "
                "exported, not shown)"
            )
        return 0

    def _drive(
        self, view: DemoView, info: RunInfo, clock: EventClock, incident: IncidentSchedule, provider: Any,
        end_wall_ns: int, services: list[ServiceProcess], processor: Any,
    ) -> None:
        incident_wall_ns = clock.wall_ns(incident.start_event_ns)
        incident_on = False
        live = None
        if self.config.live:
            from rich.console import Console
            from rich.live import Live

            live = Live(console=Console(file=self.out), refresh_per_second=4, transient=False)
            live.start()

        def drain(block_s: float) -> None:
            try:
                item: tuple[Window, list[MetricPoint]] | None = (
                    self.windows.get(timeout=block_s) if block_s > 0 else self.windows.get_nowait()
                )
            except queue.Empty:
                item = None
            while item is not None:
                if item[0].start_ns >= info.event_end_ns:
                    # spans of requests still in flight at the end: exported, not shown, as
                    # their window holds only stragglers
                    self.straggler_windows += 1
                    view.apply_self_telemetry(item[1])
                else:
                    view.update(*item)
                    if live is None:
                        self._print(window_line(view, info))
                try:
                    item = self.windows.get_nowait()
                except queue.Empty:
                    item = None
            if live is not None:
                live.update(live_view(view, info, clock.event_ns(time.time_ns()), list(self.alert_log),
                                      height=live.console.size.height))

        try:
            while time.time_ns() < end_wall_ns:
                if not incident_on and time.time_ns() >= incident_wall_ns:
                    provider.set_incident(
                        model=incident.model, latency_factor=incident.latency_factor,
                        token_factor=incident.token_factor,
                    )
                    incident_on = True
                drain(LIVE_REFRESH_S)
                for svc in services:
                    code = svc.proc.poll()
                    if code not in (None, 0):
                        raise RuntimeError(f"demo service {svc.service} exited with {code}:\n{svc.log_tail()}")
            for svc in services:
                code = svc.stop(SERVICE_STOP_TIMEOUT_S)
                if code != 0:
                    self._print(f"warning: demo service {svc.service} exited with {code}:\n{svc.log_tail()}")
            processor.stop()  # drains, closes the last windows and exports them (as replay does)
            drain(0.0)
        finally:
            if live is not None:
                live.update(live_view(view, info, info.event_end_ns, list(self.alert_log),
                                      height=live.console.size.height))
                live.stop()
