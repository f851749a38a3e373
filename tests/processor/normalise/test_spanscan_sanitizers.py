"""The C span scanner under AddressSanitizer and UndefinedBehaviorSanitizer.

The scanner parses untrusted bytes in C, so a bounds mistake would be a memory-safety bug in a
network service. This test compiles ``_spanscan.c`` with ``-fsanitize=address,undefined``, lays
the package out in a temporary import root with that build, and runs the scanner's differential
tests and the hostile decode/normalise corpus in a child Python with the sanitizer runtimes
preloaded. Any out-of-bounds read, use-after-free or undefined behaviour aborts the child.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def _runtime(cc: str, name: str) -> str | None:
    out = subprocess.run([cc, f"-print-file-name={name}"], capture_output=True, text=True, timeout=30).stdout.strip()
    return out if os.path.isabs(out) and os.path.exists(out) else None


def test_scanner_is_memory_safe_under_sanitizers(tmp_path):
    cc = shutil.which("gcc")
    if cc is None:
        pytest.skip("gcc not available")
    asan, ubsan = _runtime(cc, "libasan.so"), _runtime(cc, "libubsan.so")
    if asan is None or ubsan is None:
        pytest.skip("sanitizer runtimes not installed")
    root = tmp_path / "root"
    pkg = root / "gensight"
    shutil.copytree(REPO / "core", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "instrumentation", pkg / "instrumentation", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "processor", pkg / "processor", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    subprocess.run(
        [cc, "-shared", "-fPIC", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
         "-fno-omit-frame-pointer", f"-I{sysconfig.get_paths()['include']}", str(REPO / "processor" / "normalise" / "_spanscan.c"),
         "-o", str(pkg / "processor" / "normalise" / f"_spanscan{SUFFIX}")],
        check=True, capture_output=True, timeout=120,
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(root),
        "PYTHONMALLOC": "malloc",  # every object its own malloc block, so ASan sees each bytes' bounds
        "LD_PRELOAD": f"{asan}:{ubsan}",
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",  # CPython's own allocations are not leaks
        "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
    }
    check = ("from gensight.processor.normalise import normaliser as normalise; import sys; "
             f"sys.exit(0 if normalise._spanscan.__file__.startswith({str(root)!r}) else 3)")
    subprocess.run([sys.executable, "-c", check], env=env, check=True, timeout=120)  # the sanitized build is used
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         str(REPO / "tests" / "processor" / "normalise" / "test_spanscan.py"),
         str(REPO / "tests" / "hostile" / "test_decode_normalise.py")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
    assert " passed" in out.stdout
