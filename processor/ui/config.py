"""The ``ui`` config section: where the status page listens and which variable holds its token."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from gensight.processor.config_fields import Section

DEFAULT_TOKEN_ENV = "GENSIGHT_UI_TOKEN"
DEFAULT_HOST = "127.0.0.1"  # an endpoint without a host binds loopback only
DEFAULT_PAGE_SIZE = 50
DEFAULT_HISTORY_WINDOWS = 180  # 3 h of 60 s windows per series


@dataclass(frozen=True)
class UIConfig(Section):
    """``ui: {endpoint, token_env}``. Off unless ``endpoint`` is set; the token is read from the
    environment variable ``token_env`` (never from the file), and when it is set every request
    must present it (``Authorization: Bearer``, or ``?token=`` once, which sets a cookie)."""

    endpoint: str | None = None  # HOST:PORT; None = no status page
    token_env: str = DEFAULT_TOKEN_ENV
    page_size: int = DEFAULT_PAGE_SIZE  # series rows per page
    history_windows: int = DEFAULT_HISTORY_WINDOWS  # windows kept per series for the charts

    def validate(self, path: str = "ui") -> None:
        if self.endpoint is not None:
            host, _, port = self.endpoint.rpartition(":")
            if not port.isdigit() or not 0 <= int(port) < 65536:
                raise ValueError(f"{path}.endpoint: must be HOST:PORT (or PORT: loopback), got {self.endpoint!r}")
        if not self.token_env:
            raise ValueError(f"{path}.token_env: must name an environment variable")
        if not 1 <= self.page_size <= 500:
            raise ValueError(f"{path}.page_size: must be between 1 and 500, got {self.page_size}")
        if not 2 <= self.history_windows <= 10_000:
            raise ValueError(f"{path}.history_windows: must be between 2 and 10000, got {self.history_windows}")

    def host_port(self) -> tuple[str, int]:
        """(host, port); no host given (``PORT`` or ``:PORT``) means loopback only."""
        host, _, port = (self.endpoint or "").rpartition(":")
        return host.strip("[]") or DEFAULT_HOST, int(port)

    def token(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return env.get(self.token_env) or None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
