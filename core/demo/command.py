"""Run the self-contained demo: processor + instrumented workload + live view.

``gensight demo`` starts the Gensight processor in this process (embedded defaults, SQLite
state in a temporary directory), starts the bundled fake OpenAI-compatible provider on
127.0.0.1, and runs three instrumented services (``checkout-assistant``, ``support-bot``,
``search-rag``) as separate processes: the real ``openai`` SDK under Gensight's instrumentation,
exporting spans with the OTel SDK's OTLP/gRPC exporter to the processor's receiver. Halfway
through, the provider's incident switch makes one model slow and verbose; the live view shows
the SLIs, burn rates, drift and anomaly scores and alerts that detect it. Demo time is
compressed (``--speed``): half an hour of event-time traffic runs in a minute and a half.

No Docker, no network beyond loopback, no API key. Without a terminal (CI, SSH without a TTY,
a pipe) it prints one line per window instead of the live screen.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_DURATION_S = 90.0
DEFAULT_SPEED = 20.0  # event seconds per wall-clock second: 90 s of wall time = 30 min of traffic
DEFAULT_WINDOW_S = 60.0  # event time
DEFAULT_SEED = 7
DEFAULT_UI_ENDPOINT = "127.0.0.1:0"


def _positive(kind: type[float] | type[int]):  # type: ignore[no-untyped-def]
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration-s", type=_positive(float), default=DEFAULT_DURATION_S,
        help=f"wall-clock duration of the workload (default {DEFAULT_DURATION_S:g})",
    )
    parser.add_argument(
        "--speed", type=_positive(float), default=DEFAULT_SPEED,
        help=f"event-time seconds simulated per wall-clock second (default {DEFAULT_SPEED:g})",
    )
    parser.add_argument(
        "--window-s", type=_positive(float), default=DEFAULT_WINDOW_S,
        help=f"processor window length in event-time seconds (default {DEFAULT_WINDOW_S:g})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="workload random seed (default %(default)s)")
    parser.add_argument(
        "--output", metavar="FILE",
        help="where to write the exported metrics as OTLP/JSON lines (default: a file in a new temp directory)",
    )
    parser.add_argument(
        "--ui-endpoint", metavar="HOST:PORT", default=DEFAULT_UI_ENDPOINT,
        help="where to serve the status page (default %(default)s: loopback, a free port; 'off' for none)",
    )
    parser.add_argument(
        "--plain", action="store_true",
        help="print one line per window instead of the live view (the default without a terminal)",
    )


# what the demo needs beyond the base install (the ``demo`` extra)
REQUIRED_MODULES = {"openai": "openai", "rich": "rich", "grpc": "grpcio", "sklearn": "scikit-learn",
                    "matplotlib": "matplotlib", "aiohttp": "aiohttp"}


def missing_packages() -> list[str]:
    import importlib.util

    return [pkg for module, pkg in REQUIRED_MODULES.items() if importlib.util.find_spec(module) is None]


def run(args: argparse.Namespace) -> int:
    missing = missing_packages()
    if missing:
        print(
            f"gensight demo: missing {', '.join(missing)}; install with: pip install 'gensight[demo]'",
            file=sys.stderr,
        )
        return 2
    from gensight.demo.runner import DemoConfig, DemoRunner

    workdir = Path(tempfile.mkdtemp(prefix="gensight-demo-"))
    output = Path(args.output).resolve() if args.output else workdir / "metrics.otlp.jsonl"
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.touch()
    except OSError as exc:
        print(f"gensight demo: cannot write --output {output}: {exc}", file=sys.stderr)
        return 2
    config = DemoConfig(
        duration_s=args.duration_s,
        speed=args.speed,
        window_s=args.window_s,
        seed=args.seed,
        output=output,
        workdir=workdir,
        live=not args.plain and sys.stdout.isatty() and os.environ.get("TERM") != "dumb",
        ui_endpoint=None if args.ui_endpoint in ("", "off") else args.ui_endpoint,
    )
    started = time.monotonic()
    print(
        f"gensight demo: starting the fake provider, the processor and 3 instrumented services "
        f"(work dir {workdir}) ...",
        flush=True,
    )
    previous = _terminate_like_interrupt()
    try:
        return DemoRunner(config).run()
    except RuntimeError as exc:  # a part did not start or died; its log tail is in the message
        print(f"gensight demo: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ngensight demo: interrupted after {time.monotonic() - started:.0f} s", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminate_like_interrupt() -> Any:
    """SIGTERM (``timeout``, ``kill``, CI cancelling a job) takes the Ctrl-C path, which stops the
    services, the processor and the provider instead of leaving them behind."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, on_term)
