"""``python -m gensight.fakes``: serve the fake provider (both APIs on one port) until SIGINT/SIGTERM.

:func:`add_behaviour_arguments` and :func:`provider_from_args` are shared with the demo's
provider process (``gensight.demo.provider``), so both take the same flags the same way.
"""

from __future__ import annotations

import argparse
from typing import Any

from gensight.fakes.server import DEFAULT_HOST, FakeProvider


def add_behaviour_arguments(parser: argparse.ArgumentParser) -> None:
    """The answer-behaviour flags: latency, error rate, RNG seed."""
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--latency-per-token-s", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)


def provider_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace, **where: Any) -> FakeProvider:
    """A (not yet started) provider from the behaviour flags; ``where``: ``host`` / ``port``.
    Invalid values exit through ``parser.error`` with the reason."""
    try:
        return FakeProvider(latency_s=args.latency_s, latency_per_token_s=args.latency_per_token_s,
                            error_rate=args.error_rate, seed=args.seed, **where)
    except ValueError as exc:
        parser.error(str(exc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gensight.fakes",
                                     description="OpenAI- and Anthropic-compatible fake LLM provider (deterministic).")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=0)
    add_behaviour_arguments(parser)
    args = parser.parse_args(argv)
    provider_from_args(parser, args, host=args.host, port=args.port).serve_forever()
    return 0
