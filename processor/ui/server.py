"""The status page server: aiohttp on its own event-loop thread; also a pipeline sink.

Why aiohttp: a well-kept HTTP server (request-line, header and body limits, keep-alive timeouts)
that runs in one thread beside the processor's own threads, with no process manager. The page is
read-only: GET and HEAD only (others get 405), no request body is read (``client_max_size`` 1 KiB).
Charts are drawn in one worker thread (``CHART_WORKERS``) so a burst of image requests cannot
take more than one core of matplotlib at a time; the event loop stays free for pages.

Access: the endpoint binds loopback unless ``ui.endpoint`` names another address; when the
``ui.token_env`` variable is set, every request must carry the token (``Authorization: Bearer``,
the ``gensight_ui`` cookie, or ``?token=`` once, which sets that cookie and redirects without it).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from gensight.processor.export.sink import Sink
from gensight.processor.ui import charts, pages
from gensight.processor.ui.config import UIConfig, is_loopback
from gensight.processor.ui.state import StatusState

log = logging.getLogger(__name__)

COOKIE = "gensight_ui"
REQUIRED_MODULES = ("aiohttp", "matplotlib")  # the ``ui`` extra
CHART_WORKERS = 1
MAX_REQUEST_BODY_BYTES = 1024
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
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None
        self._thread: threading.Thread | None = None
        self._charts = ThreadPoolExecutor(max_workers=CHART_WORKERS, thread_name_prefix="gensight-ui-chart")

    @property
    def port(self) -> int:
        return self._port

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

        host, port = self.config.host_port()
        if not is_loopback(host) and not self.token:
            log.warning("gensight: status page on non-loopback %s without a token (set %s)", host,
                        self.config.token_env)
        async def guard(request: Any, handler: Any) -> Any:
            return await self._guard(request, handler)

        app = web.Application(middlewares=[web.middleware(guard)], client_max_size=MAX_REQUEST_BODY_BYTES)
        app.router.add_get("/", self._root)
        app.router.add_get("/ui", self._root)
        app.router.add_get("/ui/", self._overview)
        app.router.add_get("/ui/series/{sid}", self._series)
        app.router.add_get("/ui/chart/{name}", self._chart)
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app, access_log=None, keepalive_timeout=KEEPALIVE_TIMEOUT_S)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, port, backlog=64)
            loop.run_until_complete(site.start())
        except OSError as exc:
            loop.run_until_complete(runner.cleanup())
            loop.close()
            raise OSError(f"ui.endpoint: cannot listen on {self.config.endpoint}: {exc}") from None
        sockets = getattr(site._server, "sockets", None)  # the bound socket: port 0 asks the OS for a free one
        self._port = int(sockets[0].getsockname()[1]) if sockets else port
        self._loop, self._runner = loop, runner
        self._thread = threading.Thread(target=loop.run_forever, name="gensight-ui", daemon=True)
        self._thread.start()
        log.info("gensight: status page on %s", self.url)

    def shutdown(self, timeout_s: float = 5.0) -> bool:
        loop, self._loop = self._loop, None
        if loop is None:
            return True
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(timeout_s)
        except Exception:  # noqa: BLE001 - stopping must not raise
            log.debug("status page cleanup failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout_s)
        if not loop.is_running():
            loop.close()
        self._charts.shutdown(wait=False, cancel_futures=True)
        return True

    # -- handlers ----------------------------------------------------------------------------------
    def _authorised(self, request: Any) -> bool:
        if not self.token:
            return True
        header = request.headers.get("Authorization", "")
        offered = [header[7:] if header.startswith("Bearer ") else "", request.cookies.get(COOKIE, ""),
                   request.query.get("token", "")]
        return any(o and hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)

    async def _guard(self, request: Any, handler: Any) -> Any:  # aiohttp middleware
        from aiohttp import web

        if request.method not in ("GET", "HEAD"):
            resp = web.Response(status=405, text="read-only\n", headers={"Allow": "GET, HEAD"})
        elif not self._authorised(request):
            resp = web.Response(status=401, text="missing or invalid token\n",
                                headers={"WWW-Authenticate": 'Bearer realm="gensight-ui"'})
        elif "token" in request.query:
            # the token came in the URL: keep it in a cookie, drop it from the address bar
            rest = [(k, v) for k, v in request.query.items() if k != "token"]
            resp = web.HTTPSeeOther(request.rel_url.with_query(rest))
            resp.set_cookie(COOKIE, request.query["token"], httponly=True, samesite="Strict", path="/ui")
        else:
            try:
                resp = await handler(request)
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
        loop = asyncio.get_running_loop()
        svg = await loop.run_in_executor(self._charts, charts.chart_svg, key, detail.history, detail.periods, size)
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
