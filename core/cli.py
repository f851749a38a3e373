"""The ``gensight`` command.

Each subcommand lives in the module that owns its stage and exposes two functions,
``configure(parser)`` and ``run(args) -> int``. Modules are imported only to build the
parser, so they must keep heavy imports (grpc, sklearn, openai) inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gensight._version import __version__

# subcommand -> (module, one-line help). Order is the order shown in --help.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("gensight.demo.command", "run the self-contained demo: processor + instrumented workload + live view"),
    "serve": ("gensight.processor.commands.serve", "run the OTLP receiver service"),
    "replay": ("gensight.processor.commands.replay", "replay recorded OTLP JSON spans through the pipeline"),
    "baseline": ("gensight.processor.commands.baseline", "pin, reset or show drift baselines"),
    "pricing": ("gensight.pricing.command", "show the price of a model; price the calls in recorded span files"),
    "compare": ("gensight.processor.commands.compare", "compare two variants (models, prompts) on recorded spans"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gensight",
        description="OpenTelemetry-native observability for LLM applications.",
    )
    parser.add_argument("--version", action="version", version=f"gensight {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A subcommand whose optional dependencies are missing still shows up, and says why.
            sp = sub.add_parser(name, help=f"{help_text} (unavailable: {exc.name} not installed)")
            sp.set_defaults(_missing=exc.name, _command=name)
            continue
        sp = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.configure(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    missing = getattr(args, "_missing", None)
    if missing:
        print(
            f"gensight {args._command}: the '{missing}' package is not installed; "
            "install it with: pip install 'gensight[demo]'",
            file=sys.stderr,
        )
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
