"""The demo's running parts: the bundled fake provider and the in-process processor.

Each ``start_*`` returns a small handle with exactly what the orchestrator needs, so the
orchestrator does not depend on the parts' wider APIs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

# Provider latency at demo speed 1: a fixed time to first byte plus a per-output-token time,
# close to hosted gpt-4o-mini/gpt-4o figures. Divided by the demo speed (time compression).
PROVIDER_LATENCY_S = 0.35
PROVIDER_LATENCY_PER_TOKEN_S = 0.012
PROVIDER_ERROR_RATE = 0.004  # half 429, half 500



class ProviderHandle:
    """The fake provider, compressed in time, with its incident switch."""

    def __init__(self, fake: Any) -> None:
        self._fake = fake

    @property
    def base_url(self) -> str:
        return str(self._fake.base_url)

    def set_incident(self, model: str, latency_factor: float, token_factor: float) -> None:
        self._fake.configure(
            {"incident": {"model": model, "latency_factor": latency_factor, "output_factor": token_factor}}
        )

    def clear_incident(self) -> None:
        self._fake.configure({"incident": None})

    def stop(self) -> None:
        self._fake.stop()


def start_fake_provider(seed: int, latency_scale: float) -> ProviderHandle:
    """Start ``gensight.fake_provider`` on 127.0.0.1 (ephemeral port), latencies x ``latency_scale``."""
    from gensight.fake_provider import FakeProvider

    fake = FakeProvider(
        latency_s=PROVIDER_LATENCY_S * latency_scale,
        latency_per_token_s=PROVIDER_LATENCY_PER_TOKEN_S * latency_scale,
        error_rate=PROVIDER_ERROR_RATE,
        seed=seed,
    )
    return ProviderHandle(fake.start())


# The demo's embedded analytics configuration: SLOs on the services' LLM calls, and baselines
# short enough to be learnt in the first quarter of the run (the processor defaults assume days
# of traffic). Thresholds sit well above the workload's normal tail so only the incident burns.
DEMO_SLOS: list[dict[str, Any]] = [
    {"name": "checkout-availability", "type": "availability", "target": 0.99,
     "selector": {"service": "checkout-assistant", "kind": "chat"}},
    {"name": "support-latency", "type": "latency", "target": 0.99, "threshold_s": 3.0,
     "selector": {"service": "support-bot", "kind": "chat"}},
    {"name": "search-latency", "type": "latency", "target": 0.99, "threshold_s": 3.0,
     "selector": {"service": "search-rag", "kind": "chat"}},
    {"name": "tools-availability", "type": "availability", "target": 0.95,
     "selector": {"kind": "execute_tool"}},
]


def demo_analytics_config(windows_total: int) -> dict[str, Any]:
    return {
        "slos": DEMO_SLOS,
        "drift": {"reference_calls": 120, "min_eval_count": 40},
        "anomaly": {"min_history": max(3, min(10, windows_total // 4)), "min_calls": 5},
        "admin": {"enabled": False},  # no fixed admin port: other processes may use it
    }


class JsonLinesFileSink:
    """A metrics sink writing each exported request as one OTLP/JSON line (as ``replay`` does)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self.lines = 0

    def export(self, request: Any) -> None:
        from gensight.processor.decode import metrics_request_to_json_line

        line = metrics_request_to_json_line(request)
        with self._lock:
            if self._file.closed:
                return
            self._file.write(line + "\n")
            self._file.flush()
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


class ProcessorHandle:
    """The in-process ``gensight serve``: its OTLP/gRPC endpoint, and stop (which flushes)."""

    def __init__(self, server: Any, analytics: Any | None) -> None:
        self._server = server
        self._analytics = analytics
        self._stopped = False

    @property
    def grpc_endpoint(self) -> str:
        return f"127.0.0.1:{self._server.grpc_port}"

    def stop(self) -> None:
        """Stop the receiver, drain the queue, close every open window and export it (once)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.stop()
        if self._analytics is not None:
            self._analytics.shutdown()


def start_processor(
    state_dir: Path, window_s: float, lateness_s: float, sinks: Sequence[Any], windows_total: int
) -> ProcessorHandle:
    """Start the processor in this process with the demo's embedded configuration.

    The receivers bind 127.0.0.1 on ephemeral ports (the workload uses gRPC); no Prometheus.
    """
    from gensight.processor import pipeline as pipeline_mod
    from gensight.processor.config import config_from_mapping
    from gensight.processor.serve import ProcessorServer

    analytics_cfg = demo_analytics_config(windows_total)
    config = config_from_mapping(
        {
            "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
            "pipeline": {"window_s": window_s, "allowed_lateness_s": lateness_s, "idle_tick_s": 0.2},
            "state": {"dir": str(state_dir)},
            "analytics": analytics_cfg,
        }
    )
    server = ProcessorServer(config, sinks=list(sinks))
    analytics = None
    if not any("analytics" in factory for factory in pipeline_mod.ANALYSER_FACTORIES):
        # the analytics stage is not registered with the pipeline in this build: add it here
        from gensight.processor.analytics import build_analysers

        analytics = build_analysers(analytics_cfg, state_dir=str(state_dir))
        server.pipeline.analysers.extend(analytics.analysers)
    server.start()
    return ProcessorHandle(server, analytics)
