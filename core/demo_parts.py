"""The demo's running parts: the bundled fake provider and the in-process processor.

Each ``start_*`` returns a small handle with exactly what the orchestrator needs, so the
orchestrator does not depend on the parts' wider APIs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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


@dataclass
class ProcessorHandle:
    """The in-process processor: its OTLP/gRPC endpoint, a flush for end of input, and stop."""

    grpc_endpoint: str
    _flush: Callable[[], None]
    _stop: Callable[[], None]

    def flush(self) -> None:
        self._flush()

    def stop(self) -> None:
        self._stop()


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
            self._file.write(line + "\n")
            self._file.flush()
            self.lines += 1

    def close(self) -> None:
        with self._lock:
            self._file.close()


def start_processor(state_dir: Path, window_s: float, lateness_s: float, sinks: Sequence[Any]) -> ProcessorHandle:
    """Start the processor in this process with the demo's embedded configuration."""
    raise NotImplementedError("processor not merged yet")
