"""See the prices Gensight uses.

  gensight pricing show MODEL [--provider P] [--at DATE] [--tier T]
      the rates that would price a call (USD per 1M tokens) and where they come from: your
      pricing file, a bundled correction, or genai-prices (with its version)
  gensight pricing check FILE...
      the models in recorded span files (OTLP/JSON lines, as ``replay`` reads), with call
      counts, whether each is priced, and the total cost

Both read ``--pricing-file`` or ``$GENSIGHT_PRICING_FILE`` the way the instrumentation and the
processor do, and never use the network.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from typing import Any

_PROG = "gensight pricing"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="pricing_command", metavar="{show,check}")
    sub.required = True
    show = sub.add_parser("show", help="the rates that would price MODEL, and their source")
    show.add_argument("model", metavar="MODEL")
    show.add_argument("--provider", help="provider name as spans carry it (gen_ai.provider.name, gen_ai.system, ...)")
    show.add_argument("--at", metavar="DATE", help="event time: YYYY-MM-DD or ISO 8601 (default: now); UTC unless an offset is given")
    show.add_argument("--tier", help="service tier (e.g. flex, priority, batch)")
    check = sub.add_parser("check", help="models in recorded span files: calls, priced or not, total cost")
    check.add_argument("files", nargs="+", metavar="FILE", help="OTLP/JSON lines (.gz ok; - for stdin)")
    for p in (show, check):
        p.add_argument("--pricing-file", metavar="FILE", help="pricing overrides (default: $GENSIGHT_PRICING_FILE)")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from gensight.pricing import PricingError, PricingTable

    try:
        table = PricingTable.load(args.pricing_file)
    except PricingError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    if args.pricing_command == "show":
        return _show(table, args)
    return _check(table, args)


def parse_at(text: str | None) -> int:
    """``--at`` as Unix ns; a date alone is its UTC midnight, a naive time is UTC."""
    if not text:
        return time.time_ns()
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--at: not a date or ISO 8601 time: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1_000_000) * 1000


def _library_version(table: Any) -> str | None:
    library = table.library()
    return None if library is None else library.version


def _show(table: Any, args: argparse.Namespace) -> int:
    try:
        at_ns = parse_at(args.at)
    except ValueError as exc:
        print(f"{_PROG} show: {exc}", file=sys.stderr)
        return 2
    quote = table.quote(args.provider, args.model, args.tier)
    rates = quote.rates_at(at_ns) if quote is not None else None
    when = dt.datetime.fromtimestamp(at_ns / 1e9, dt.timezone.utc).isoformat(timespec="seconds")
    out: dict[str, Any] = {
        "model": args.model, "provider": args.provider, "tier": args.tier, "at": when,
        "priced": rates is not None, "source": quote.source if quote is not None else None,
        "genai_prices_version": _library_version(table),
    }
    if rates is not None:
        out["usd_per_1m_tokens"] = rates.per_million()
        out["usd_per_request"] = rates.per_request
        out["long_context_tiers"] = [
            {"above_input_tokens": start, "usd_per_1m_tokens": tier.per_million()} for start, tier in rates.tiers
        ]
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"model     {args.model}" + (f"  (provider {args.provider})" if args.provider else ""))
        print(f"at        {when}" + (f"  tier {args.tier}" if args.tier else ""))
        if rates is None:
            print("price     none: calls of this model get no cost attribute; add it to a file named by "
                  "GENSIGHT_PRICING_FILE")
        else:
            print(f"source    {out['source']}")
            _print_rates("", rates.per_million(), rates.per_request)
            for start, tier in rates.tiers:
                _print_rates(f"above {start:,} input tokens: ", tier.per_million(), 0.0)
        version = out["genai_prices_version"]
        print(f"library   genai-prices {version}" if version else "library   genai-prices not installed")
    return 0 if rates is not None else 1


def _print_rates(prefix: str, per_1m: dict[str, float], per_request: float) -> None:
    parts = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in per_1m.items())
    extra = f", per request {per_request:g}" if per_request else ""
    print(f"rates     {prefix}USD per 1M tokens: {parts}{extra}")


def _check(table: Any, args: argparse.Namespace) -> int:
    from pathlib import Path

    try:
        from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
        from gensight.processor.receive.json_lines import BadLine, iter_json_lines
        from gensight.processor.records import EXECUTE_TOOL, RETRIEVAL
    except ModuleNotFoundError as exc:
        print(f"{_PROG} check: needs the processor extra ({exc.name} missing): pip install 'gensight[processor]'",
              file=sys.stderr)
        return 2
    for name in args.files:
        if name != "-" and not Path(name).is_file():
            print(f"{_PROG} check: no such file: {name}", file=sys.stderr)
            return 2
    normaliser = Normaliser(NormaliseConfig(), table, b"pricing-check")
    # (provider, model) -> [calls, calls with a cost, cost USD, calls whose span carried its own cost]
    models: dict[tuple[str, str], list[Any]] = {}

    def on_bad(bad: BadLine) -> None:
        print(f"{_PROG} check: {bad.source}:{bad.line_no}: skipped: {bad.reason}", file=sys.stderr)

    for name in args.files:
        for request in iter_json_lines(name, on_bad_line=on_bad):
            for rec in normaliser.normalise(request).records:
                if rec.kind in (EXECUTE_TOOL, RETRIEVAL):
                    continue
                row = models.setdefault((rec.provider, rec.target), [0, 0, 0.0, 0])
                row[0] += 1
                if rec.cost_usd is not None:
                    row[1] += 1
                    row[2] += rec.cost_usd
                    row[3] += not rec.cost_enriched
    rows = []
    for (provider, model), (calls, priced, cost, own) in sorted(models.items(), key=lambda kv: -kv[1][2]):
        quote = table.quote(provider, model) if model else None
        source = quote.source if quote is not None else ("span attribute" if own else "none")
        status = "yes" if priced == calls else "no" if priced == 0 else f"{priced}/{calls}"
        rows.append({"provider": provider, "model": model, "calls": calls, "priced": status,
                     "cost_usd": cost, "price_source": source})
    total = sum(r["cost_usd"] for r in rows)
    unpriced = sum(r["calls"] for r in rows) - sum(models[(r["provider"], r["model"])][1] for r in rows)
    if args.json:
        print(json.dumps({"models": rows, "total_cost_usd": total, "unpriced_calls": unpriced}, indent=2))
    else:
        header = ("PROVIDER", "MODEL", "CALLS", "PRICED", "COST_USD", "PRICE SOURCE")
        body = [(r["provider"] or "-", r["model"] or "-", str(r["calls"]), r["priced"], f"{r['cost_usd']:.6f}",
                 r["price_source"]) for r in rows]
        widths = [max(len(x[i]) for x in [header, *body]) for i in range(len(header))]
        for line in [header, *body]:
            print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        print(f"total cost USD {total:.6f} over {sum(r['calls'] for r in rows)} calls; {unpriced} unpriced")
    return 0
