"""The demo's running parts: the bundled fake provider and the in-process processor.

Each ``start_*`` returns a small handle with exactly what the orchestrator needs, so the
orchestrator does not depend on the parts' wider APIs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# Provider latency at demo speed 1: a fixed time to first byte plus a per-output-token time,
# close to hosted gpt-4o-mini/gpt-4o figures. Divided by the demo speed (time compression).
PROVIDER_LATENCY_S = 0.35
PROVIDER_LATENCY_PER_TOKEN_S = 0.012
PROVIDER_ERROR_RATE = 0.002  # half 429, half 500



class ProviderHandle:
    """The fake provider in its own process (as a remote provider would be), compressed in time.

    Its incident switch is the real one: ``POST /_control``, as in the compose stack.
    """

    def __init__(self, proc: subprocess.Popen[bytes], base_url: str) -> None:
        self._proc = proc
        self.base_url = base_url

    def _control(self, settings: dict[str, Any]) -> None:
        control_url = self.base_url.rsplit("/v1", 1)[0] + "/_control"
        request = urllib.request.Request(
            control_url, data=json.dumps(settings).encode(), headers={"content-type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def set_incident(self, model: str, latency_factor: float, token_factor: float) -> None:
        self._control({"incident": {"model": model, "latency_factor": latency_factor, "output_factor": token_factor}})

    def clear_incident(self) -> None:
        self._control({"incident": None})

    def stop(self) -> None:
        """Close its stdin (it exits on end-of-file), then terminate it if it lingers."""
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            self._proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait(timeout=5)
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def start_fake_provider(seed: int, latency_scale: float, log_path: Path, timeout_s: float = 60.0) -> ProviderHandle:
    """Start the fake provider process (``gensight.demo.provider``) on 127.0.0.1, ephemeral port,
    latencies x ``latency_scale``."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "gensight.demo.provider",
                "--latency-s", repr(PROVIDER_LATENCY_S * latency_scale),
                "--latency-per-token-s", repr(PROVIDER_LATENCY_PER_TOKEN_S * latency_scale),
                "--error-rate", repr(PROVIDER_ERROR_RATE), "--seed", str(seed),
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
        )
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout_s)
    text = line[0].decode(errors="replace").strip() if line else ""
    if not text.startswith("fake provider listening on "):
        handle = ProviderHandle(proc, "")
        handle.stop()
        detail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        raise RuntimeError(f"the fake provider did not start: {text or 'no output'}\n{detail}")
    return ProviderHandle(proc, text.rsplit(" ", 1)[-1])


# The demo's embedded analytics configuration: SLOs on the services' calls, and baselines short
# enough to be learnt in the first part of the run (the processor's defaults assume days of
# traffic). Latency thresholds sit well above the workload's normal tail, so only the incident
# burns budget.
DEMO_SLOS: list[dict[str, Any]] = [
    {"name": "checkout-availability", "type": "availability", "target": 0.99,
     "selector": {"service": "checkout-assistant", "kind": "chat"}},
    {"name": "support-latency", "type": "latency", "target": 0.98, "threshold_s": 5.0,
     "selector": {"service": "support-bot", "kind": "chat"}},
    {"name": "search-latency", "type": "latency", "target": 0.98, "threshold_s": 5.0,
     "selector": {"service": "search-rag", "kind": "chat"}},
]


def demo_analytics_config(windows_total: int) -> dict[str, Any]:
    # min_bad_events: time compression multiplies a 100 ms stall of a busy machine into seconds
    # of event time; a few such stalls must not page, a real incident makes every call bad.
    return {
        "slos": [{**slo, "min_bad_events": 5} for slo in DEMO_SLOS],
        # few calls per window: fewer bins keep PSI sampling noise under the alert level
        "drift": {"reference_calls": 400, "min_eval_count": 150, "bins": 6},
        # references of a few windows' calls: the demo's series see 5-30 calls a window
        "anomaly": {"min_history": max(3, min(10, windows_total // 4)), "reference_values": 60,
                    "min_reference_values": 20, "min_reference_calls": 30},
        "admin": {"enabled": False},  # no fixed admin port: other processes may use it
    }


class ProcessorHandle:
    """The in-process ``gensight serve``: its OTLP/gRPC endpoint, and stop (which flushes)."""

    def __init__(self, server: Any, analytics: Any | None) -> None:
        self._server = server
        self._analytics = analytics
        self._stopped = False

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self._server.grpc_port}"

    @property
    def ui_url(self) -> str:
        return str(self._server.ui_url)

    def stop(self) -> None:
        """Stop the receiver, drain the queue, close every open window and export it (once)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        if self._analytics is not None:
            self._analytics.shutdown()


def metrics_file_sink(path: Path) -> Any:
    """The processor's OTLP/JSON-lines sink (the one ``gensight replay --output`` uses)."""
    from gensight.processor.export.jsonlines import JsonLinesSink

    return JsonLinesSink(path, append=False)


def start_processor(
    state_dir: Path, window_s: float, lateness_s: float, sinks: Sequence[Any], windows_total: int,
    ui_endpoint: str | None = None,
) -> ProcessorHandle:
    """Start the processor in this process with the demo's embedded configuration.

    The receivers bind 127.0.0.1 on ephemeral ports (the workload uses gRPC); no Prometheus. With
    ``ui_endpoint`` the status page is one more sink (``ProcessorHandle.ui_url``).
    """
    from gensight.processor.config import config_from_mapping
    from gensight.processor.pipeline import pipeline as pipeline_mod
    from gensight.processor.server import ProcessorServer

    analytics_cfg = demo_analytics_config(windows_total)
    config = config_from_mapping(
        {
            "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
            # compressed event time may run ahead of the wall clock: no future-skew rejection
            "pipeline": {"window_s": window_s, "allowed_lateness_s": lateness_s, "idle_tick_s": 0.2,
                         "max_future_skew_s": None},
            "state": {"dir": str(state_dir)},
            "analytics": analytics_cfg,
            "ui": {"endpoint": ui_endpoint},
        }
    )
    sinks = list(sinks)
    if ui_endpoint:
        from gensight.processor.ui.server import build_status_page

        page = build_status_page(config)
        if page is not None:
            sinks.append(page)
    server = ProcessorServer(config, sinks=sinks)
    analytics = None
    if not any("analytics" in factory for factory in pipeline_mod.ANALYSER_FACTORIES):
        # the analytics stage is not registered with the pipeline in this build: add it here
        from gensight.processor.analyse.analytics import build_analysers

        analytics = build_analysers(analytics_cfg, state_dir=str(state_dir))
        server.pipeline.analysers.extend(analytics.analysers)
    server.start()
    return ProcessorHandle(server, analytics)
