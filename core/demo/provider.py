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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gensight.demo.provider")
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--latency-per-token-s", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from gensight.fakes import FakeProvider

    try:
        fake = FakeProvider(
            latency_s=args.latency_s, latency_per_token_s=args.latency_per_token_s,
            error_rate=args.error_rate, seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
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
