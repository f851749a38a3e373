"""Authenticated HTTP admin endpoint: drift baseline show / pin / reset on a running processor.

Bound to loopback by default; every request needs ``Authorization: Bearer <token>`` (compared in
constant time). Without a configured token the endpoint does not start — an admin API that
anyone on the host could call is not offered.

Routes (JSON in, JSON out)::

    GET  /v1/baseline?series=GLOB&series=GLOB     -> {"baselines": [...]}
    POST /v1/baseline/pin    {"series": [GLOB...]} -> {"pinned": n}
    POST /v1/baseline/reset  {"series": [GLOB...], "force": false} -> {"reset": n}
"""

from __future__ import annotations

import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gensight.processor.analyse.drift import DriftAnalyser

MAX_BODY_BYTES = 64 * 1024


class AdminServer:
    def __init__(self, drift: DriftAnalyser, token: str, host: str = "127.0.0.1", port: int = 0,
                 on_change: Any = None) -> None:
        if not token:
            raise ValueError("admin endpoint: a bearer token is required (analytics.admin.token or "
                             "GENSIGHT_ADMIN_TOKEN)")
        self.drift = drift
        self._token = token.encode()
        self._on_change = on_change  # e.g. Analytics.snapshot, so an edit survives a crash
        handler = self._handler_class()
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> AdminServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gensight-admin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self._token)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "gensight-admin"

            def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
                return None

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if code == 401:
                    self.send_header("WWW-Authenticate", 'Bearer realm="gensight-admin"')
                self.end_headers()
                self.wfile.write(data)

            def _auth(self) -> bool:
                if server._authorised(self.headers.get("Authorization")):
                    return True
                self._send(401, {"error": "missing or wrong bearer token"})
                return False

            def do_GET(self) -> None:
                if not self._auth():
                    return
                url = urlsplit(self.path)
                if url.path != "/v1/baseline":
                    self._send(404, {"error": f"no route {url.path}"})
                    return
                patterns = parse_qs(url.query).get("series")
                self._send(200, {"baselines": server.drift.show(patterns)})

            def do_POST(self) -> None:
                if not self._auth():
                    return
                path = urlsplit(self.path).path
                if path not in ("/v1/baseline/pin", "/v1/baseline/reset"):
                    self._send(404, {"error": f"no route {path}"})
                    return
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_BODY_BYTES:
                    self._send(413 if length > 0 else 400, {"error": "bad or too large Content-Length"})
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict):
                        raise ValueError("body must be a JSON object")
                    series = body.get("series")
                    if series is not None and (not isinstance(series, list) or
                                               not all(isinstance(s, str) for s in series)):
                        raise ValueError("'series' must be a list of strings")
                except ValueError as exc:
                    self._send(400, {"error": f"bad request: {exc}"})
                    return
                if path.endswith("/pin"):
                    result: dict[str, Any] = {"pinned": server.drift.pin(series)}
                else:
                    result = {"reset": server.drift.reset(series, force=bool(body.get("force", False)))}
                if server._on_change is not None:
                    try:
                        server._on_change()
                    except Exception as exc:  # the edit is applied; persisting it is retried by the next snapshot
                        result["warning"] = f"not persisted yet: {exc}"
                self._send(200, result)

        return Handler
