"""Deprecated alias of :mod:`gensight.fakes` (kept for one release: use ``python -m gensight.fakes``).

``python -m gensight.fake_provider`` and ``from gensight.fake_provider import FakeProvider`` keep
working until the next release.
"""

from __future__ import annotations

from gensight.fakes import FakeProvider, Incident, Reply, Request
from gensight.fakes.cli import main
from gensight.fakes.openai import embedding_vector
from gensight.fakes.protocol import Plan, count_tokens, fake_words
from gensight.fakes.server import CACHE_BLOCK_TOKENS, CACHE_MIN_TOKENS, DEFAULT_HOST

__all__ = [
    "CACHE_BLOCK_TOKENS", "CACHE_MIN_TOKENS", "DEFAULT_HOST", "FakeProvider", "Incident", "Plan", "Reply",
    "Request", "count_tokens", "embedding_vector", "fake_words", "main",
]

if __name__ == "__main__":
    import sys

    sys.exit(main())
