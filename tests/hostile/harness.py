"""A real processor on loopback plus a real OTLP/gRPC metrics sink, for the reliability suites.

``MetricsSink`` is an OTLP/gRPC ``MetricsService`` that records every request (and its raw bytes,
for the leak checks); it can be stopped and restarted on the same port to simulate an outage.
``start_processor`` runs ``ProcessorServer`` in-process with both receivers on ephemeral ports.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from gensight.processor.config import config_from_mapping
from gensight.processor.export.metric_builder import flatten
from gensight.processor.server import ProcessorServer


class MetricsSink(metrics_service_pb2_grpc.MetricsServiceServicer, logs_service_pb2_grpc.LogsServiceServicer):
    """A real OTLP/gRPC metrics (and logs) endpoint that records what it receives."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Any] = []
        self.raw: list[bytes] = []
        self.log_requests: list[Any] = []
        self.lock = threading.Lock()
        self.port = port
        self._server: grpc.Server | None = None
        self.start()

    def start(self) -> None:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2),
                             options=[("grpc.max_receive_message_length", 256 << 20), ("grpc.so_reuseport", 0)])
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(self, server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(self, server)
        port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        if not port:
            raise OSError(f"metrics sink cannot bind 127.0.0.1:{self.port}")
        self.port = port
        server.start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait(5)
            self._server = None

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        with self.lock:
            if isinstance(request, logs_service_pb2.ExportLogsServiceRequest):
                self.log_requests.append(request)
                self.raw.append(request.SerializeToString())
                return logs_service_pb2.ExportLogsServiceResponse()
            self.requests.append(request)
            self.raw.append(request.SerializeToString())
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def rows(self, name: str | None = None) -> list[tuple[str, str, tuple, Any]]:
        with self.lock:
            reqs = list(self.requests)
        out = [r for req in reqs for r in flatten(req)]
        return [r for r in out if name is None or r[1] == name]

    def latest(self, name: str) -> dict[tuple[str, tuple], Any]:
        """Last value per (service, attributes) of a metric (cumulative sums: the total)."""
        out: dict[tuple[str, tuple], Any] = {}
        for service, _, attrs, value in self.rows(name):
            out[(service, attrs)] = value
        return out

    def all_bytes(self) -> bytes:
        with self.lock:
            return b"".join(self.raw)


# The logs service and the metrics service both call ``Export``: gRPC dispatches by service name,
# and the request type tells them apart above.


def processor_config(sink_port: int | None, **sections: Any) -> Any:
    data: dict[str, Any] = {
        "receivers": {"grpc": {"endpoint": "127.0.0.1:0"}, "http": {"endpoint": "127.0.0.1:0"}},
        "pipeline": {"idle_tick_s": 0.05},
    }
    if sink_port is not None:
        data["export"] = {"endpoint": f"http://127.0.0.1:{sink_port}"}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merged = dict(data[key])
            for k, v in value.items():
                if isinstance(v, dict) and isinstance(merged.get(k), dict):
                    merged[k] = {**merged[k], **v}
                else:
                    merged[k] = v
            data[key] = merged
        else:
            data[key] = value
    return config_from_mapping(data)


@contextmanager
def running_processor(config: Any, **kwargs: Any) -> Iterator[ProcessorServer]:
    server = ProcessorServer(config, **kwargs)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, interval_s: float = 0.02) -> Any:
    """Poll ``predicate`` until truthy (bounded); returns its last value."""
    deadline = time.monotonic() + timeout_s
    value = predicate()
    while not value and time.monotonic() < deadline:
        time.sleep(interval_s)
        value = predicate()
    return value
