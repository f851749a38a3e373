"""TLS / mTLS and bearer-token auth shared by the gRPC and HTTP receivers (and the Prometheus endpoint).

Config objects validate themselves at start-up (files exist and are readable, tokens non-empty)
and raise ``ValueError`` with a message naming the bad key, e.g.
``receivers.grpc.tls.cert_file: file not found: /etc/x.pem``; ``validate(prefix)`` takes the key
path of the object in the YAML so messages point at the user's config.

Interface::

    TlsConfig(cert_file, key_file, client_ca_file=None)   # client_ca_file set -> mTLS (client cert required)
        .validate(prefix) ; .server_ssl_context() -> ssl.SSLContext ; .grpc_server_credentials()
    AuthConfig(bearer_tokens=(), bearer_token_file=None)    # empty -> auth off
        .validate(prefix) ; .enabled ; .authenticator() -> BearerAuthenticator
    BearerAuthenticator.check(authorization_header_value | None) -> bool

Bearer auth is compatible with the Collector's ``bearertokenauth`` extension as a client: it sends
``authorization: Bearer <token>`` (gRPC metadata key or HTTP header). Tokens compare in constant
time. A token file holds one token per line (blank lines and ``#`` comments ignored), so tokens can
be rotated by listing old and new together.
"""

from __future__ import annotations

import hmac
import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from gensight.processor.config_fields import ConfigError, Section

BEARER_SCHEME = "Bearer"


def check_readable_file(path: str | None, key: str) -> None:
    """Fail fast naming ``key`` when ``path`` is missing, not a file or unreadable."""
    if not path:
        raise ConfigError(f"{key}: required")
    if not os.path.exists(path):
        raise ConfigError(f"{key}: file not found: {path}")
    if not os.path.isfile(path):
        raise ConfigError(f"{key}: not a regular file: {path}")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{key}: file not readable: {path}")


@dataclass(frozen=True)
class TlsConfig(Section):
    """Server-side TLS. ``client_ca_file`` switches on mutual TLS: clients must present a cert it signed."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def validate(self, prefix: str = "tls") -> None:
        check_readable_file(self.cert_file, f"{prefix}.cert_file")
        check_readable_file(self.key_file, f"{prefix}.key_file")
        if self.client_ca_file is not None:
            check_readable_file(self.client_ca_file, f"{prefix}.client_ca_file")
        try:
            self.server_ssl_context()
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{prefix}: cannot load certificate/key: {exc}") from None

    def server_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.load_verify_locations(cafile=self.client_ca_file)
            ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def grpc_server_credentials(self) -> Any:
        import grpc

        with open(self.key_file, "rb") as f:
            key = f.read()
        with open(self.cert_file, "rb") as f:
            cert = f.read()
        ca = None
        if self.client_ca_file:
            with open(self.client_ca_file, "rb") as f:
                ca = f.read()
        return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


@dataclass(frozen=True)
class AuthConfig(Section):
    """Optional bearer-token auth. No tokens and no file -> auth off."""

    bearer_tokens: tuple[str, ...] = field(default_factory=tuple)
    bearer_token_file: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.bearer_tokens) or self.bearer_token_file is not None

    def validate(self, prefix: str = "auth") -> None:
        for i, token in enumerate(self.bearer_tokens):
            if not isinstance(token, str) or not token.strip():
                raise ConfigError(f"{prefix}.bearer_tokens[{i}]: must be a non-empty string")
            if any(c.isspace() for c in token):
                raise ConfigError(f"{prefix}.bearer_tokens[{i}]: must not contain whitespace")
        if self.bearer_token_file is not None:
            check_readable_file(self.bearer_token_file, f"{prefix}.bearer_token_file")
            if not _read_token_file(self.bearer_token_file):
                raise ConfigError(f"{prefix}.bearer_token_file: no token in {self.bearer_token_file}")

    def tokens(self) -> tuple[str, ...]:
        from_file = _read_token_file(self.bearer_token_file) if self.bearer_token_file else ()
        return tuple(self.bearer_tokens) + from_file

    def authenticator(self) -> BearerAuthenticator | None:
        """None when auth is off, so callers skip the check entirely."""
        return BearerAuthenticator(self.tokens()) if self.enabled else None


def _read_token_file(path: str) -> tuple[str, ...]:
    with open(path, encoding="utf-8") as f:
        return tuple(s for s in (line.strip() for line in f) if s and not s.startswith("#"))


class BearerAuthenticator:
    """Checks an ``authorization`` value against the configured tokens in constant time."""

    def __init__(self, tokens: tuple[str, ...] | list[str]) -> None:
        if not tokens:
            raise ConfigError("BearerAuthenticator needs at least one token")
        self._tokens = [t.encode("utf-8") for t in tokens]

    def check(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, presented = authorization.strip().partition(" ")
        if scheme.lower() != BEARER_SCHEME.lower() or not presented:
            return False
        given = presented.strip().encode("utf-8", "surrogateescape")
        ok = False
        for token in self._tokens:  # no early exit: time does not depend on which token matched
            ok |= hmac.compare_digest(given, token)
        return ok
