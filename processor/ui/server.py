"""The status page server: on the processor's HTTP server (``receive/http_server.py``: aiohttp on its
own event-loop thread, with connection, head and body limits and keep-alive timeouts, shared with
the receiver, the scrape and the admin endpoints); also a pipeline sink.

The page is read-only: GET and HEAD only (others get 405), no request body is read
(``client_max_size`` 1 KiB). Charts are drawn in the server's one worker thread (``CHART_WORKERS``)
so a burst of image requests cannot take more than one core of matplotlib at a time; the event loop
stays free for pages.

Access: the endpoint binds loopback unless ``ui.endpoint`` names another address; when the
``ui.token_env`` variable is set, every request must carry the token (``Authorization: Bearer``,
the ``gensight_ui`` cookie, or ``?token=`` once, which sets that cookie and redirects without it).
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from gensight.processor.export.sink import Sink
from gensight.processor.ui import charts, pages
from gensight.processor.ui.config import UIConfig, is_loopback
from gensight.processor.ui.state import StatusState

log = logging.getLogger(__name__)

COOKIE = "gensight_ui"
REQUIRED_MODULES = ("aiohttp", "matplotlib")  # the ``ui`` extra (aiohttp comes with ``processor``)
CHART_WORKERS = 1
MAX_REQUEST_BODY_BYTES = 1024
MAX_CONNECTIONS = 64  # browsers open a handful each
KEEPALIVE_TIMEOUT_S = 15.0
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class StatusPage(Sink):
    """``gensight serve --ui-endpoint``: start(), port, url, shutdown(); export()/export_logs() feed it."""

    def __init__(self, config: UIConfig, *, state: StatusState | None = None, trace_url_template: str = "",
                 token: str | None = None) -> None:
        config.validate("ui")
        self.config = config
        self.state = state or StatusState(config.history_windows)
        self.trace_url_template = trace_url_template
        self.token = token if token is not None else config.token()
        self._server: Any = None  # receive.http_server.HttpServer once started

    @property
    def port(self) -> int:
        return self._server.port if self._server is not None else 0

    @property
    def url(self) -> str:
        host, _ = self.config.host_port()
        shown = "127.0.0.1" if host in ("", "0.0.0.0") else (f"[{host}]" if ":" in host else host)
        return f"http://{shown}:{self.port}/ui/"

    # -- sink ---------------------------------------------------------------------------------
    def export(self, request: Any) -> bool:
        return self.state.export(request)

    def export_logs(self, request: Any) -> bool:
        return self.state.export_logs(request)

    def force_flush(self, timeout_s: float = 10.0) -> bool:
        return True

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        from aiohttp import web

        from gensight.processor.receive.http_server import HttpServer, deny_plain

        host, port = self.config.host_port()
        if not is_loopback(host) and not self.token:
            log.warning("gensight: status page on non-loopback %s without a token (set %s)", host,
                        self.config.token_env)
        routes = [web.get("/", self._root), web.get("/ui", self._root), web.get("/ui/", self._overview),
                  web.get("/ui/series/{sid}", self._series), web.get("/ui/chart/{name}", self._chart)]
        server = HttpServer("ui", host, port, routes=routes, max_connections=MAX_CONNECTIONS,
                            client_max_size=MAX_REQUEST_BODY_BYTES, idle_timeout_s=KEEPALIVE_TIMEOUT_S,
                            workers=CHART_WORKERS, auth=self._authorised if self.token else None,
                            deny=deny_plain("gensight-ui", "missing or invalid token"),  # header, cookie or ?token=
                            middlewares=[self._guard])
        try:
            server.start()
        except OSError as exc:
            server.shutdown(0)
            raise OSError(f"ui.endpoint: cannot listen on {self.config.endpoint}: {exc}") from None
        self._server = server
        log.info("gensight: status page on %s", self.url)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown(timeout_s)
        return True

    # -- handlers ----------------------------------------------------------------------------------
    def _authorised(self, request: Any) -> bool:
        if not self.token:
            return True
        header = request.headers.get("Authorization", "")
        offered = [header[7:] if header.startswith("Bearer ") else "", request.cookies.get(COOKIE, ""),
                   request.query.get("token", "")]
        return any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)

    async def _guard(self, request: Any, handler: Any) -> Any:  # aiohttp middleware, outside the token check
        from aiohttp import web

        if request.method not in ("GET", "HEAD"):
            resp = web.Response(status=405, text="read-only\n", headers={"Allow": "GET, HEAD"})
        elif "token" in request.query and self._authorised(request):
            # the token came in the URL: keep it in a cookie, drop it from the address bar
            rest = [(k, v) for k, v in request.query.items() if k != "token"]
            resp = web.HTTPSeeOther(request.rel_url.with_query(rest))
            resp.set_cookie(COOKIE, request.query["token"], httponly=True, samesite="Strict", path="/ui")
        else:
            try:
                resp = await handler(request)  # the server's token check, then the page
            except web.HTTPException as exc:
                resp = exc
        resp.headers.update(SECURITY_HEADERS)
        return resp

    async def _root(self, request: Any) -> Any:
        from aiohttp import web

        raise web.HTTPFound("/ui/")

    async def _overview(self, request: Any) -> Any:
        from aiohttp import web

        try:
            page = int(request.query.get("page", "1"))
        except ValueError:
            page = 1
        html = pages.overview(self.state.snapshot(), page, self.config.page_size, self.trace_url_template)
        return web.Response(text=html, content_type="text/html", charset="utf-8")

    async def _series(self, request: Any) -> Any:
        from aiohttp import web

        detail = self.state.series_detail(request.match_info["sid"])
        if detail is None:
            raise web.HTTPNotFound(text="no such series\n")
        return web.Response(text=pages.series_page(detail, self.trace_url_template), content_type="text/html",
                            charset="utf-8")

    async def _chart(self, request: Any) -> Any:
        from aiohttp import web

        name = request.match_info["name"]
        size = request.query.get("size", charts.SMALL)
        if not name.endswith(".svg") or size not in (charts.SMALL, charts.LARGE):
            raise web.HTTPNotFound()
        detail = self.state.series_detail(name[: -len(".svg")])
        if detail is None:
            raise web.HTTPNotFound()
        last = detail.history[-1].time_ns if detail.history else 0
        # redrawn when the series gets a window or an alert changes; cached otherwise
        key = (detail.sid, size, hash((last, tuple(detail.periods))))
        svg = await self._server.run_blocking(charts.chart_svg, key, detail.history, detail.periods, size)
        return web.Response(text=svg, content_type="image/svg+xml", charset="utf-8")


def build_status_page(config: Any) -> StatusPage | None:
    """The status page for a processor config (``ui`` section), or None when it is off. SLO and
    budget selectors and the trace URL template come from ``analytics``."""
    ui: UIConfig = config.ui
    if not ui.endpoint:
        return None
    import importlib.util

    from gensight.processor.analyse.analytics import AnalyticsConfig
    from gensight.processor.config import ConfigError

    missing = [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"ui.endpoint: the status page needs {', '.join(missing)}: pip install 'gensight[ui]'")

    analytics = AnalyticsConfig.from_dict(getattr(config, "analytics", None) or {})
    state = StatusState(ui.history_windows, slo_selectors={s.name: s.selector for s in analytics.slos},
                        budget_selectors={b.name: b.selector for b in analytics.cost.budgets})
    return StatusPage(ui, state=state, trace_url_template=analytics.alerts.trace_url_template)
