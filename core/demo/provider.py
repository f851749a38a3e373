"""The demo's fake provider process: ``gensight.fakes`` tied to its parent's lifetime.

``gensight demo`` runs the provider in its own process (a remote provider does not share the
processor's CPU or GIL). This wrapper exits when its stdin reaches end-of-file, which happens
when the demo closes the pipe *or dies*, so a killed demo never leaves a provider behind.

Usage (internal): ``python -m gensight.demo.provider --latency-s S --latency-per-token-s S
--error-rate R --seed N``; prints ``fake provider listening on URL`` once serving on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gensight.fakes.cli import add_behaviour_arguments, provider_from_args


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gensight.demo.provider")
    add_behaviour_arguments(parser)
    args = parser.parse_args(argv)
    fake = provider_from_args(parser, args)
    fake.start()
    try:
        print(f"fake provider listening on {fake.base_url}", flush=True)
        while sys.stdin.buffer.read(4096):  # until the demo closes the pipe or dies
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
