"""Pin, reset or show drift baselines (reference distributions).

Offline, on a state directory no processor is using (``--state-dir DIR``), or on a running
``gensight serve`` through its authenticated admin endpoint (``--admin-url URL --token T``;
the token may also come from GENSIGHT_ADMIN_TOKEN).

  show   list references: series, feature, learning/frozen, pinned, sample size, bin edges
  pin    freeze references now and protect them from reset
  reset  forget references so they are learnt again from the next calls (pinned: add --force)

Series are given as globs over ``service|kind|provider|target``, e.g. ``--series 'checkout|*'``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

ACTIONS = ("pin", "reset", "show")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("action", choices=ACTIONS, help="what to do with the baselines")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--state-dir", metavar="DIR", help="state directory of a processor that is not running")
    where.add_argument("--admin-url", metavar="URL", help="admin endpoint of a running processor, e.g. http://127.0.0.1:4321")
    parser.add_argument("--token", help="bearer token for --admin-url (default: $GENSIGHT_ADMIN_TOKEN)")
    parser.add_argument("--series", action="append", metavar="GLOB",
                        help="series to act on, glob over service|kind|provider|target (repeatable; default all)")
    parser.add_argument("--force", action="store_true", help="reset also pinned baselines")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    try:
        result = _via_admin(args) if args.admin_url else _via_state(args)
    except RuntimeError as exc:
        print(f"gensight baseline: {exc}", file=sys.stderr)
        return 1
    if args.json or args.action != "show":
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        _print_table(result.get("baselines", []))
    return 0


def _via_state(args: argparse.Namespace) -> dict[str, Any]:
    from gensight.processor.analyse.drift import DriftAnalyser
    from gensight.processor.analyse.state import STATE_FILE, StateError, StateStore

    path = os.path.join(args.state_dir, STATE_FILE)
    if not os.path.exists(path):
        raise RuntimeError(f"no state file at {path}")
    try:
        store = StateStore(args.state_dir)
    except StateError as exc:
        raise RuntimeError(str(exc)) from None
    try:
        drift = DriftAnalyser()
        drift.import_state(store.load().get("drift", {}))
        if args.action == "show":
            return {"baselines": drift.show(args.series)}
        if args.action == "pin":
            result = {"pinned": drift.pin(args.series)}
        else:
            result = {"reset": drift.reset(args.series, force=args.force)}
        store.save({"drift": drift.export_state()})
        return result
    finally:
        store.close()


def _via_admin(args: argparse.Namespace) -> dict[str, Any]:
    import urllib.error
    import urllib.request
    from urllib.parse import urlencode

    token = args.token or os.environ.get("GENSIGHT_ADMIN_TOKEN")
    if not token:
        raise RuntimeError("--admin-url needs --token (or GENSIGHT_ADMIN_TOKEN)")
    base = args.admin_url.rstrip("/")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if args.action == "show":
        query = urlencode([("series", s) for s in args.series or []])
        req = urllib.request.Request(f"{base}/v1/baseline" + (f"?{query}" if query else ""), headers=headers)
    else:
        body = json.dumps({"series": args.series, "force": args.force}).encode()
        req = urllib.request.Request(f"{base}/v1/baseline/{args.action}", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise RuntimeError(f"admin endpoint answered {exc.code}: {detail}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"cannot reach admin endpoint {base}: {exc}") from None


def _print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        print("no baselines")
        return
    print(f"{'series':50} {'feature':14} {'status':8} {'pinned':6} {'n':>6}")
    for r in rows:
        print(f"{r['series'][:50]:50} {r['feature']:14} {r['status']:8} {'yes' if r['pinned'] else 'no':6} {r['n']:>6}")
