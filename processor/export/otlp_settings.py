"""OTLP exporter settings: the ``export`` config section and its resolution against the environment.

Settings resolution (OTLP exporter specification): an explicit config value wins; otherwise the
signal-specific variable (``OTEL_EXPORTER_OTLP_METRICS_*`` / ``OTEL_EXPORTER_OTLP_LOGS_*``), then
the generic ``OTEL_EXPORTER_OTLP_*``, then the default. For HTTP the signal path (``/v1/metrics``,
``/v1/logs``) is appended only to the *generic* endpoint; a signal-specific endpoint is used as is.
An explicit ``endpoint`` with no path (``http://collector:4318``) gets the signal path too, so
``--export-endpoint`` can name a collector by host; with a path it is used as is. The protocol
defaults to ``grpc`` like the Python SDK (the specification's SHOULD is ``http/protobuf``);
``http/json`` is supported too. For gRPC, ``http://`` means plaintext, ``https://`` TLS, and a
bare ``host:port`` follows ``insecure`` (default: TLS).

Why apart from the exporter: the config loader needs the section (and its checks, which resolve
the environment so a bad ``OTEL_EXPORTER_OTLP_*`` value fails at start-up) without the transports.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gensight.processor.config_fields import ConfigError, Section
from gensight.processor.endpoint import parse_endpoint

GRPC = "grpc"
HTTP_PROTOBUF = "http/protobuf"
HTTP_JSON = "http/json"
PROTOCOLS = (GRPC, HTTP_PROTOBUF, HTTP_JSON)
SIGNALS = ("metrics", "logs")
# The specification says SDKs SHOULD default to http/protobuf; the Python SDK's OTLP exporters
# (opentelemetry-distro) default to grpc, and so do we: a bare ``--export-endpoint host:4317``
# reaches a Collector's default gRPC receiver.
DEFAULT_PROTOCOL = GRPC
DEFAULT_GRPC_ENDPOINT = "http://localhost:4317"
DEFAULT_HTTP_ENDPOINT = "http://localhost:4318"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ExporterConfig(Section):
    """Explicit settings; every ``None`` falls back to the OTEL_EXPORTER_OTLP_* environment."""

    endpoint: str | None = None
    protocol: str | None = None  # "grpc" | "http/protobuf" | "http/json"
    headers: dict[str, str] | None = None
    timeout_s: float | None = None  # per attempt
    compression: str | None = None  # "gzip" | "none"
    certificate_file: str | None = None  # CA bundle to trust
    client_certificate_file: str | None = None  # mTLS
    client_key_file: str | None = None
    insecure: bool | None = None  # gRPC only, for endpoints without a scheme
    max_queue_requests: int = 1000
    max_queue_items: int = 1_000_000
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_elapsed_s: float | None = None  # None: keep retrying until delivered, evicted or shutdown

    def validate(self, prefix: str = "exporter", env: Mapping[str, str] | None = None) -> None:
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ConfigError(f"{prefix}.protocol: must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.compression is not None and self.compression not in ("gzip", "none"):
            raise ConfigError(f"{prefix}.compression: must be 'gzip' or 'none', got {self.compression!r}")
        if self.timeout_s is not None and not self.timeout_s > 0:
            raise ConfigError(f"{prefix}.timeout_s: must be > 0, got {self.timeout_s}")
        if self.max_queue_requests < 1:
            raise ConfigError(f"{prefix}.max_queue_requests: must be >= 1, got {self.max_queue_requests}")
        if self.max_queue_items < 1:
            raise ConfigError(f"{prefix}.max_queue_items: must be >= 1, got {self.max_queue_items}")
        if not 0 < self.initial_backoff_s <= self.max_backoff_s:
            raise ConfigError(
                f"{prefix}.initial_backoff_s: must be > 0 and <= max_backoff_s, got {self.initial_backoff_s}"
            )
        if self.max_retry_elapsed_s is not None and self.max_retry_elapsed_s < 0:
            raise ConfigError(f"{prefix}.max_retry_elapsed_s: must be >= 0, got {self.max_retry_elapsed_s}")
        if self.endpoint is not None:
            _check_endpoint(self.endpoint, f"{prefix}.endpoint")
        if self.headers is not None:
            for key in self.headers:
                if not key or any(c.isspace() for c in key):
                    raise ConfigError(f"{prefix}.headers: invalid header name {key!r}")
        for attr in ("certificate_file", "client_certificate_file", "client_key_file"):
            path = getattr(self, attr)
            if path is not None and not os.access(path, os.R_OK):
                raise ConfigError(f"{prefix}.{attr}: file not found or not readable: {path}")
        for signal in SIGNALS:  # env values fail fast too, naming the variable
            resolve_settings(self, signal, env)


class ExporterSettings(NamedTuple):
    """Fully resolved settings for one signal."""

    signal: str
    protocol: str
    endpoint: str  # URL for HTTP; host:port target for gRPC
    headers: dict[str, str]
    timeout_s: float
    compression: str  # "gzip" | "none"
    certificate_file: str | None
    client_certificate_file: str | None
    client_key_file: str | None
    insecure: bool  # gRPC: plaintext


def _check_endpoint(endpoint: str, key: str) -> None:
    """``http(s)://host[:port][/path]``, or a bare ``HOST:PORT`` (the one parser's rules)."""
    if "://" not in endpoint:
        parse_endpoint(endpoint, key)
        return
    parsed = urllib.parse.urlparse(endpoint)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{key}: must be http(s)://host:port[/path] or HOST:PORT, got {endpoint!r}")


def _env(env: Mapping[str, str], signal: str, suffix: str) -> tuple[str | None, str]:
    """(value, variable name) from the signal-specific variable, else the generic one."""
    specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_{suffix}"
    generic = f"OTEL_EXPORTER_OTLP_{suffix}"
    value = env.get(specific)
    if value is not None and value.strip():
        return value.strip(), specific
    value = env.get(generic)
    if value is not None and value.strip():
        return value.strip(), generic
    return None, generic


def parse_headers(value: str, key: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` with URL-encoded values (the OTEL_EXPORTER_OTLP_HEADERS format)."""
    headers: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        name, sep, val = part.partition("=")
        name = urllib.parse.unquote(name).strip()
        if not sep or not name:
            raise ConfigError(f"{key}: invalid header entry {part.strip()!r} (expected key=value)")
        headers[name] = urllib.parse.unquote(val).strip()
    return headers


def _parse_bool(value: str, key: str) -> bool:
    low = value.lower()
    if low in ("true", "1", "yes"):
        return True
    if low in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _join_signal_path(base: str, signal: str) -> str:
    return base.rstrip("/") + f"/v1/{signal}"


def resolve_settings(config: ExporterConfig, signal: str, env: Mapping[str, str] | None = None) -> ExporterSettings:
    """Apply explicit > signal env > generic env > default for every setting of one signal."""
    if signal not in SIGNALS:
        raise ConfigError(f"signal must be one of {SIGNALS}, got {signal!r}")
    env = os.environ if env is None else env

    protocol = config.protocol
    if protocol is None:
        value, var = _env(env, signal, "PROTOCOL")
        if value is not None and value not in PROTOCOLS:
            raise ConfigError(f"{var}: must be one of {', '.join(PROTOCOLS)}, got {value!r}")
        protocol = value or DEFAULT_PROTOCOL

    # endpoint
    specific_var = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    if config.endpoint is not None:
        raw, from_generic, var = config.endpoint, False, "endpoint"
        if protocol != GRPC and urllib.parse.urlparse(raw).path in ("", "/"):
            from_generic = True  # a bare host: add the signal path
    elif env.get(specific_var, "").strip():
        raw, from_generic, var = env[specific_var].strip(), False, specific_var
    elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        raw, from_generic, var = env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip(), True, "OTEL_EXPORTER_OTLP_ENDPOINT"
    else:
        raw = DEFAULT_GRPC_ENDPOINT if protocol == GRPC else DEFAULT_HTTP_ENDPOINT
        from_generic, var = True, "default"
    _check_endpoint(raw, var)

    insecure_value, insecure_var = _env(env, signal, "INSECURE")
    if config.insecure is not None:
        insecure = config.insecure
    elif insecure_value is not None:
        insecure = _parse_bool(insecure_value, insecure_var)
    else:
        insecure = False

    if protocol == GRPC:
        if "://" in raw:
            parsed = urllib.parse.urlparse(raw)
            insecure = parsed.scheme == "http"
            endpoint = parsed.netloc
        else:
            endpoint = raw
    else:
        if "://" not in raw:
            raw = "http://" + raw
        endpoint = _join_signal_path(raw, signal) if from_generic else raw

    if config.headers is not None:
        headers = dict(config.headers)
    else:
        value, var = _env(env, signal, "HEADERS")
        headers = parse_headers(value, var) if value else {}

    if config.timeout_s is not None:
        timeout_s = float(config.timeout_s)
    else:
        value, var = _env(env, signal, "TIMEOUT")
        if value is None:
            timeout_s = DEFAULT_TIMEOUT_S
        else:
            try:
                timeout_s = float(value) / 1000.0
            except ValueError:
                raise ConfigError(f"{var}: expected milliseconds, got {value!r}") from None
            if not timeout_s > 0:
                raise ConfigError(f"{var}: must be > 0 ms, got {value!r}")

    if config.compression is not None:
        compression = config.compression
    else:
        value, var = _env(env, signal, "COMPRESSION")
        compression = (value or "none").lower()
        if compression not in ("gzip", "none"):
            raise ConfigError(f"{var}: must be gzip or none, got {value!r}")

    def _file(explicit: str | None, suffix: str) -> str | None:
        if explicit is not None:
            return explicit
        value, var = _env(env, signal, suffix)
        if value is not None and not os.access(value, os.R_OK):
            raise ConfigError(f"{var}: file not found or not readable: {value}")
        return value

    return ExporterSettings(
        signal=signal,
        protocol=protocol,
        endpoint=endpoint,
        headers=headers,
        timeout_s=timeout_s,
        compression=compression,
        certificate_file=_file(config.certificate_file, "CERTIFICATE"),
        client_certificate_file=_file(config.client_certificate_file, "CLIENT_CERTIFICATE"),
        client_key_file=_file(config.client_key_file, "CLIENT_KEY"),
        insecure=insecure,
    )
