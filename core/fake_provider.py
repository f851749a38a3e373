"""Deprecated alias of :mod:`gensight.fakes` (kept for one release: use ``python -m gensight.fakes``).

``python -m gensight.fake_provider`` and ``from gensight.fake_provider import FakeProvider`` keep
working until the next release.
"""

from __future__ import annotations

from gensight.fakes.openai import *  # noqa: F403
from gensight.fakes.openai import FakeProvider, Incident, Reply, Request, main

__all__ = ["FakeProvider", "Incident", "Reply", "Request", "main"]

if __name__ == "__main__":
    import sys

    sys.exit(main())
