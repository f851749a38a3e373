"""Authenticated HTTP admin endpoint: drift baseline show / pin / reset on a running processor.

Bound to loopback by default; every request needs ``Authorization: Bearer <token>`` (compared in
constant time). Without a configured token the endpoint does not start — an admin API that
anyone on the host could call is not offered.

Routes (JSON in, JSON out)::

    GET  /v1/baseline?series=GLOB&series=GLOB     -> {"baselines": [...]}
    POST /v1/baseline/pin    {"series": [GLOB...]} -> {"pinned": n}
    POST /v1/baseline/reset  {"series": [GLOB...], "force": false} -> {"reset": n}

Served by the processor's HTTP server (``receive/http_server.py``: connection and body limits,
slow-client timeouts); the drift calls and the state save behind an edit run on its one worker
thread, so edits are applied one at a time and never on the event loop.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from gensight.processor.analyse.drift import DriftAnalyser
from gensight.processor.receive.http_server import BodyError, HttpServer, bearer_check, read_body
from gensight.processor.receive.tls import BearerAuthenticator

MAX_BODY_BYTES = 64 * 1024
MAX_CONNECTIONS = 8  # an operator's CLI, not traffic
IDLE_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 10.0
_EDIT_PATHS = ("/v1/baseline/pin", "/v1/baseline/reset")


class AdminServer:
    def __init__(self, drift: DriftAnalyser, token: str, host: str = "127.0.0.1", port: int = 0,
                 on_change: Any = None) -> None:
        if not token:
            raise ValueError("admin endpoint: a bearer token is required (analytics.admin.token or "
                             "GENSIGHT_ADMIN_TOKEN)")
        self.drift = drift
        self._on_change = on_change  # e.g. Analytics.snapshot, so an edit survives a crash
        self._host = host
        self._server = HttpServer(
            "admin", host, port, routes=[web.route("*", "/{path:.*}", self._route)], max_connections=MAX_CONNECTIONS,
            client_max_size=MAX_BODY_BYTES, idle_timeout_s=IDLE_TIMEOUT_S, workers=1,
            auth=bearer_check(BearerAuthenticator([token])), deny=_deny,
        )

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._server.port

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def start(self) -> AdminServer:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.shutdown(5.0)

    async def _route(self, request: web.Request) -> web.Response:
        if request.method == "GET" and request.path == "/v1/baseline":
            patterns = parse_qs(request.query_string).get("series")
            return _json(200, {"baselines": await self._server.run_blocking(self.drift.show, patterns)})
        if request.method != "POST" or request.path not in _EDIT_PATHS:
            return _json(404, {"error": f"no route {request.path}"})
        try:
            raw = await read_body(request, MAX_BODY_BYTES, BODY_TIMEOUT_S, length_required=False)
        except BodyError as exc:
            return _json(exc.status, {"error": "bad or too large Content-Length" if exc.status == 413 else exc.message})
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            series = body.get("series")
            if series is not None and (not isinstance(series, list) or not all(isinstance(s, str) for s in series)):
                raise ValueError("'series' must be a list of strings")
        except ValueError as exc:
            return _json(400, {"error": f"bad request: {exc}"})
        force = bool(body.get("force", False))
        return _json(200, await self._server.run_blocking(self._edit, request.path, series, force))

    def _edit(self, path: str, series: list[str] | None, force: bool) -> dict[str, Any]:
        if path.endswith("/pin"):
            result: dict[str, Any] = {"pinned": self.drift.pin(series)}
        else:
            result = {"reset": self.drift.reset(series, force=force)}
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception as exc:  # the edit is applied; persisting it is retried by the next snapshot
                result["warning"] = f"not persisted yet: {exc}"
        return result


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def _deny(request: web.Request) -> web.Response:
    response = _json(401, {"error": "missing or wrong bearer token"})
    response.headers["WWW-Authenticate"] = 'Bearer realm="gensight-admin"'
    return response
