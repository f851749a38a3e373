"""``python -m gensight.fakes``: serve the fake provider (both APIs on one port) until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse

from gensight.fakes.server import DEFAULT_HOST, FakeProvider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gensight.fakes",
                                     description="OpenAI- and Anthropic-compatible fake LLM provider (deterministic).")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-s", type=float, default=0.0)
    parser.add_argument("--latency-per-token-s", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        fake = FakeProvider(args.host, args.port, latency_s=args.latency_s,
                            latency_per_token_s=args.latency_per_token_s, error_rate=args.error_rate, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    fake.serve_forever()
    return 0
