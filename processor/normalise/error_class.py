"""Error classes: one small documented set for the many spellings of the same failure.

Why: the same provider failure arrives as ``RateLimitError`` (OpenAI SDK class name),
``rate_limit_error`` (Anthropic's error type), ``<class 'openai.RateLimitError'>`` (a repr some
instrumentations record) or ``429``; as raw ``error.type`` values they split into unrelated series
labels. ``error_class`` maps them to one of ``ERROR_CLASSES``; the raw value stays beside it.

Rules, first match wins, on the value lowercased with the ``<class '...'>`` wrapper, module path
and every non-alphanumeric character removed (``rate_limit_error`` -> ``ratelimiterror``):

=================  ==========================================================================
``rate_limit``     ratelimit, toomanyrequests, resourceexhausted, quota, 429
``overloaded``     overloaded, serviceunavailable, capacity, 503, 529
``timeout``        timeout, timedout, deadlineexceeded, 408, 504
``content_filter`` contentfilter, contentpolicy, safety, moderation
``server_error``   internalserver, servererror, badgateway, apierror (no status), 500, 502, 5xx
``client_error``   badrequest, invalidrequest, authentication, permission, notfound,
                   unprocessable, validation, conflict, 4xx
``other``          anything else (``_OTHER`` included; connection errors too)
=================  ==========================================================================

The HTTP status is read from the value itself (a bare ``429`` or ``HTTP 503``), else from the
span's ``http.response.status_code`` (or the older ``http.status_code``), so ``_OTHER`` or
``APIError`` with status 429 is ``rate_limit``. A status in the value wins over the attribute; the
rules are still tried in the order above, so a word of an earlier class wins over a later status.
"""

from __future__ import annotations

import re
from functools import lru_cache

RATE_LIMIT = "rate_limit"
OVERLOADED = "overloaded"
TIMEOUT = "timeout"
CONTENT_FILTER = "content_filter"
SERVER_ERROR = "server_error"
CLIENT_ERROR = "client_error"
OTHER = "other"
ERROR_CLASSES = (RATE_LIMIT, OVERLOADED, TIMEOUT, CONTENT_FILTER, SERVER_ERROR, CLIENT_ERROR, OTHER)

_RULES: tuple[tuple[str, tuple[str, ...], tuple[int, ...]], ...] = (
    (RATE_LIMIT, ("ratelimit", "toomanyrequests", "resourceexhausted", "quota"), (429,)),
    (OVERLOADED, ("overloaded", "serviceunavailable", "capacity"), (503, 529)),
    (TIMEOUT, ("timeout", "timedout", "deadlineexceeded"), (408, 504)),
    (CONTENT_FILTER, ("contentfilter", "contentpolicy", "safety", "moderation"), ()),
    (SERVER_ERROR, ("internalserver", "servererror", "badgateway", "apierror"), (500, 502)),
    (CLIENT_ERROR, ("badrequest", "invalidrequest", "authentication", "permission", "notfound", "unprocessable",
                    "validation", "conflict"), ()),
)
_CLASS_REPR = re.compile(r"^<class '(.*)'>$")
_STATUS = re.compile(r"(?<!\d)([1-5]\d\d)(?!\d)")
_CACHE_SIZE = 1024  # error.type values are few per deployment; unbounded input stays bounded here


@lru_cache(maxsize=_CACHE_SIZE)
def error_class(error_type: str | None, http_status: int | None = None) -> str:
    """The class of an ``error.type`` value, with the call's HTTP status when the span has one
    (see the module docstring)."""
    if not error_type:
        error_type = ""
    raw = error_type.strip()
    m = _CLASS_REPR.match(raw)
    if m:
        raw = m.group(1)
    raw = raw.rsplit(".", 1)[-1] if "." in raw and " " not in raw else raw
    status_m = _STATUS.search(raw)
    status = int(status_m.group(1)) if status_m else http_status
    flat = "".join(ch for ch in raw.lower() if ch.isalnum())
    for cls, words, statuses in _RULES:
        if status in statuses or any(w in flat for w in words):
            return cls
    if status is not None:
        if 500 <= status < 600:
            return SERVER_ERROR
        if 400 <= status < 500:
            return CLIENT_ERROR
    return OTHER
