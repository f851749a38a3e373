"""The fake LLM provider: one HTTP server with OpenAI- and Anthropic-compatible routes, for tests,
the demo and the compose stack.

Real SDK clients talk to it exactly as to the vendor (``base_url=provider.base_url`` for OpenAI,
``base_url=provider.url`` for Anthropic), so the instrumentation is exercised through the SDK's
real HTTP, SSE and error paths. Everything is deterministic: token counts follow from the input
size, texts and vectors from a hash of the request, random errors from a seeded RNG.

Use::

    from gensight.fakes import FakeProvider, Incident
    with FakeProvider() as fake:                       # 127.0.0.1, ephemeral port, no latency
        client = openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0)
    fake = FakeProvider(port=8000, latency_s=0.4, latency_per_token_s=0.01).start(); ...; fake.stop()

    python -m gensight.fakes --port 8000 --latency-s 0.4 --error-rate 0.02

Routes: the OpenAI ones (:mod:`gensight.fakes.openai`), ``POST /v1/messages`` (Anthropic:
:mod:`gensight.fakes.anthropic`), ``POST /_control`` and ``GET /_control`` (runtime settings),
``GET /healthz`` (:mod:`gensight.fakes.transport`).

Behaviour knobs (constructor arguments, and keys of the ``/_control`` JSON body):
``latency_s`` (before the first byte), ``latency_per_token_s`` (per output token; streams
spread it over chunks), ``error_rate`` (0..1; half 429, half 500), ``force_status`` +
``force_status_count`` (answer the next N requests, or all when the count is null, with that
status), ``break_stream_after`` (streams: drop the connection after N events, mid-body),
``usage_details`` (include ``prompt_tokens_details`` / ``completion_tokens_details``), and
``incident`` = ``{"model": "gpt-4o-mini" | null, "latency_factor": k, "output_factor": k,
"error_rate": r}`` (null clears it). Prompts seen before get cached-token counts (multiples of
128 once a prompt reaches 1024 tokens), like the vendor's prompt caching.

Adding routes: write a :data:`~gensight.fakes.protocol.Handler` (see :mod:`gensight.fakes.protocol`)
and register it with ``FakeProvider.register_route("POST", "/v1/x", handler)`` (every instance
created afterwards) or ``fake.add_route(...)`` (one instance). The provider modules' own route
tables are registered by the :mod:`gensight.fakes` package when it is imported, so this module
and the route modules do not import each other.
"""

from __future__ import annotations

import hashlib
import random
import signal
import socket
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from gensight.fakes.protocol import Handler, Plan, error_reply, fake_words
from gensight.fakes.transport import Server, make_handler

DEFAULT_HOST = "127.0.0.1"
CACHE_MIN_TOKENS = 1024
CACHE_BLOCK_TOKENS = 128
_MAX_REMEMBERED_PROMPTS = 4096
_SNAPSHOTS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}


@dataclass
class Incident:
    """A switchable degradation for one model (``model=None``: every model)."""

    model: str | None = None
    latency_factor: float = 1.0
    output_factor: float = 1.0
    error_rate: float | None = None

    def applies_to(self, model: str) -> bool:
        return self.model is None or self.model == model

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Incident:
        unknown = set(data) - {"model", "latency_factor", "output_factor", "error_rate"}
        if unknown:
            raise ValueError(f"incident: unknown key(s) {sorted(unknown)}")
        inc = cls(
            model=data.get("model"),
            latency_factor=float(data.get("latency_factor", 1.0)),
            output_factor=float(data.get("output_factor", 1.0)),
            error_rate=None if data.get("error_rate") is None else float(data["error_rate"]),
        )
        if inc.latency_factor < 0 or inc.output_factor < 0:
            raise ValueError("incident: factors must be >= 0")
        if inc.error_rate is not None and not 0 <= inc.error_rate <= 1:
            raise ValueError("incident: error_rate must be within [0, 1]")
        return inc

    def to_mapping(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "latency_factor": self.latency_factor,
            "output_factor": self.output_factor,
            "error_rate": self.error_rate,
        }


class FakeProvider:
    """The fake provider: a threaded stdlib HTTP server plus its behaviour settings."""

    _routes: dict[tuple[str, str], Handler] = {}  # filled by the provider modules (see gensight.fakes)

    def __init__(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        latency_s: float = 0.0,
        latency_per_token_s: float = 0.0,
        error_rate: float = 0.0,
        force_status: int | None = None,
        force_status_count: int | None = None,
        break_stream_after: int | None = None,
        usage_details: bool = True,
        incident: Incident | None = None,
        seed: int = 0,
    ):
        self.host = host
        self.port = port
        self._routes = dict(type(self)._routes)
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._seen_prompts: OrderedDict[str, None] = OrderedDict()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self.latency_s = latency_s
        self.latency_per_token_s = latency_per_token_s
        self.error_rate = error_rate
        self.force_status = force_status
        self.force_status_count = force_status_count
        self.break_stream_after = break_stream_after
        self.usage_details = usage_details
        self.incident = incident
        self.requests_served = 0
        self._validate()

    # -- routes -----------------------------------------------------------------------------
    @classmethod
    def register_route(cls, method: str, path: str, handler: Handler) -> None:
        """Add a route for every FakeProvider created afterwards (e.g. from a provider module)."""
        cls._routes[(method.upper(), path)] = handler

    @classmethod
    def register_routes(cls, routes: Mapping[tuple[str, str], Handler]) -> None:
        """Add a provider module's route table (``{(method, path): handler}``) for every instance."""
        for (method, path), handler in routes.items():
            cls.register_route(method, path, handler)

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        self._routes[(method.upper(), path)] = handler

    def route(self, method: str, path: str) -> Handler | None:
        """The handler for ``method path`` on this instance, or None (the server answers 404)."""
        return self._routes.get((method, path))

    # -- settings ---------------------------------------------------------------------------
    def _validate(self) -> None:
        if self.latency_s < 0 or self.latency_per_token_s < 0:
            raise ValueError("latency_s and latency_per_token_s must be >= 0")
        if not 0 <= self.error_rate <= 1:
            raise ValueError("error_rate must be within [0, 1]")
        if self.force_status is not None and not 400 <= self.force_status <= 599:
            raise ValueError("force_status must be an HTTP error status (400-599)")
        if self.break_stream_after is not None and self.break_stream_after < 0:
            raise ValueError("break_stream_after must be >= 0")

    _SETTINGS = ("latency_s", "latency_per_token_s", "error_rate", "force_status", "force_status_count",
                 "break_stream_after", "usage_details", "incident")

    def configure(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Change settings at runtime (what ``POST /_control`` does). Unknown keys are an error."""
        unknown = set(settings) - set(self._SETTINGS)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {list(self._SETTINGS)}")
        with self._lock:
            old = {k: getattr(self, k) for k in self._SETTINGS}
            try:
                for key, value in settings.items():
                    if key == "incident":
                        value = None if value is None else Incident.from_mapping(value)
                    elif key in ("latency_s", "latency_per_token_s", "error_rate"):
                        value = float(value)
                    elif key in ("force_status", "force_status_count", "break_stream_after"):
                        value = None if value is None else int(value)
                    elif key == "usage_details":
                        value = bool(value)
                    setattr(self, key, value)
                self._validate()
            except (TypeError, ValueError):
                for k, v in old.items():
                    setattr(self, k, v)
                raise
        return self.settings()

    def settings(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._SETTINGS}
        out["incident"] = self.incident.to_mapping() if self.incident else None
        out["requests_served"] = self.requests_served
        return out

    # -- shared answer logic ----------------------------------------------------------------
    def plan(self, model: str, prompt: str, input_tokens: int, max_output_tokens: Any = None) -> Plan:
        """Tokens, words, finish reason, cache and injected errors for one request."""
        seed = int.from_bytes(hashlib.sha256(f"{model}\x00{prompt}".encode()).digest()[:8], "big")
        incident = self.incident if self.incident and self.incident.applies_to(model) else None
        with self._lock:
            self.requests_served += 1
            error = None
            if self.force_status is not None and (self.force_status_count is None or self.force_status_count > 0):
                error = error_reply(self.force_status)
                if self.force_status_count is not None:
                    self.force_status_count -= 1
                    if self.force_status_count == 0:
                        self.force_status = self.force_status_count = None
            else:
                rate = incident.error_rate if incident and incident.error_rate is not None else self.error_rate
                if rate > 0 and self._rng.random() < rate:
                    error = error_reply(429 if self._rng.random() < 0.5 else 500)
            key = hashlib.sha256(prompt.encode()).hexdigest()
            seen = key in self._seen_prompts
            self._seen_prompts[key] = None
            self._seen_prompts.move_to_end(key)
            while len(self._seen_prompts) > _MAX_REMEMBERED_PROMPTS:
                self._seen_prompts.popitem(last=False)
        cached = 0
        if seen and input_tokens >= CACHE_MIN_TOKENS:
            cached = (input_tokens // CACHE_BLOCK_TOKENS) * CACHE_BLOCK_TOKENS
        output = 16 + seed % 48
        if incident:
            output = max(1, round(output * incident.output_factor))
        finish = "stop"
        if isinstance(max_output_tokens, int) and 0 < max_output_tokens < output:
            output, finish = max_output_tokens, "length"
        reasoning = output // 2 if model.startswith(("o1", "o3", "o4", "gpt-5")) else 0
        return Plan(
            model=model,
            response_model=_SNAPSHOTS.get(model, model),
            input_tokens=input_tokens,
            cached_tokens=cached,
            output_tokens=output,
            reasoning_tokens=reasoning,
            finish_reason=finish,
            words=fake_words(seed, max(1, output - reasoning)),
            error=error,
            seed=seed,
        )

    def latency_factor(self, model: str | None) -> float:
        inc = self.incident
        return inc.latency_factor if inc and model is not None and inc.applies_to(model) else 1.0

    # -- lifecycle --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What to give an OpenAI client as ``base_url``."""
        return f"{self.url}/v1"

    def start(self) -> FakeProvider:
        if self._server is not None:
            return self
        server = Server((self.host, self.port), make_handler(self))
        server.daemon_threads = False
        server.block_on_close = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-provider:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with self._lock:
            conns = list(self._connections)
        for conn in conns:  # wake keep-alive handler threads so server_close can join them
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def track_connection(self, conn: socket.socket, *, is_open: bool) -> None:
        """The HTTP handler reports each connection it serves, so :meth:`stop` can wake them."""
        with self._lock:
            if is_open:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run until SIGINT/SIGTERM (the ``python -m gensight.fakes`` entry)."""
        self.start()
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        print(f"fake provider listening on {self.base_url}", flush=True)
        while not stop.wait(0.5):
            pass
        self.stop()
