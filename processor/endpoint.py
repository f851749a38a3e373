"""The one ``HOST:PORT`` parser: receivers, the Prometheus and admin endpoints, OTLP export targets.

Why one: four copies had drifted apart (one accepted ``:4317``, one rejected ``[::1]:0``, each
worded its error differently). ``[V6]:PORT`` is accepted and returned without the brackets, the
way ``socket.bind`` and gRPC want the host; port 0 means "any free port" for listeners.
"""

from __future__ import annotations

from gensight.processor.config_fields import ConfigError

MAX_PORT = 65535


def parse_endpoint(value: str, key: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); a ``ConfigError`` naming ``key`` otherwise."""
    host, sep, port = str(value).rpartition(":")
    if not sep or not host.strip("[]") or not port.isdigit() or int(port) > MAX_PORT:
        raise ConfigError(f"{key}: must be HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)
