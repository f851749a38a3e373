"""Puts this folder on ``sys.path`` so the suites share helper modules (``otlp_wire``) by name:
pytest runs with ``--import-mode=importlib``, which does not add test folders itself."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
