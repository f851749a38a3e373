"""mypy over the real package layout: every file checked under the module name it is installed as.

Why not ``mypy -p gensight``: the top-level folders are mapped to packages by setuptools'
``package-dir`` (``core/`` → ``gensight``, ``processor/`` → ``gensight.processor``), which mypy's
module finder cannot express, and the editable install resolves them with an import hook mypy
does not run. mypy's build API takes (path, module) pairs, though: this script reads the mapping
from pyproject.toml and hands mypy each real file with its real module name, so no mirror tree is
needed and a new module or sub-package is picked up by itself.

Usage: ``python tests/mypy_layout.py [--cache-dir DIR]``; exits non-zero with mypy's messages.
"""

from __future__ import annotations

import sys
from pathlib import Path

import tomllib
from mypy import build
from mypy.config_parser import parse_config_file
from mypy.errors import CompileError
from mypy.modulefinder import BuildSource
from mypy.options import Options

ROOT = Path(__file__).resolve().parents[1]


def sources(root: Path = ROOT) -> list[BuildSource]:
    """(path, module) for every module of every package in ``[tool.setuptools.package-dir]``."""
    mapping = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found: list[BuildSource] = []
    for package, folder in mapping.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            # only modules of real packages (every folder on the way has an __init__.py)
            if any(not (base.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))):
                continue
            if parts[-1] == "__init__":
                parts.pop()
            found.append(BuildSource(str(path), ".".join([package, *parts])))
    return found


def main(argv: list[str]) -> int:
    options = Options()
    parse_config_file(options, lambda: None, str(ROOT / "pyproject.toml"), stdout=sys.stdout, stderr=sys.stderr)
    if "--cache-dir" in argv:
        options.cache_dir = argv[argv.index("--cache-dir") + 1]
    try:
        result = build.build(sources(), options)
    except CompileError as exc:
        print("\n".join(exc.messages))
        return 2
    for line in result.errors:
        print(line)
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
