"""Keyed hashing of user and tenant identifiers.

Raw ids must never reach metrics, logs or exported state: a plain SHA-256 of an email address
is reversible by dictionary, so ids are hashed with HMAC under a secret the operator controls
(``GENSIGHT_HASH_KEY`` or the processor's ``privacy.hash_key`` setting).
"""

from __future__ import annotations

import hashlib
import hmac
import os

HASH_KEY_ENV = "GENSIGHT_HASH_KEY"
_DEFAULT_KEY = b"gensight-default-key-set-GENSIGHT_HASH_KEY"
HASH_HEX_CHARS = 16


def hash_key_from_env(environ: dict[str, str] | None = None) -> bytes:
    env = os.environ if environ is None else environ
    value = env.get(HASH_KEY_ENV, "")
    return value.encode() if value else _DEFAULT_KEY


def hash_id(value: str, key: bytes) -> str:
    """A stable, non-reversible 64-bit token for ``value`` (16 hex characters)."""
    return hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HASH_HEX_CHARS]
