"""Fixtures for the hostile-input, overload, outage, restart and security suites.

The helper modules of this folder (``hostile_corpus``, ``hostile_client``, ``harness``) are
imported by name, so the folder goes on ``sys.path`` (pytest runs with ``--import-mode=importlib``,
which does not add test folders itself).
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
