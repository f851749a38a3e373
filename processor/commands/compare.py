"""Compare two arms of recorded GenAI calls: which is cheaper, faster, more error-prone, better rated.

Reads the same OTLP/JSON lines files as ``gensight replay`` ('-' = stdin, .gz ok; trace lines and
logs lines — evaluation results as log records — in one file or in separate ones) and splits the
LLM calls by the value of one attribute (``--by``: a span attribute such as
``feature_flag.result.variant`` or ``gen_ai.request.model``, or a resource attribute such as
``service.version``). Without ``--control``/``--treatment`` the two most frequent values are
compared. Per metric: both values, the difference (treatment − control) with a confidence
interval, a p-value from a test that fits the metric, Holm-adjusted across metrics, and which
side is better when the difference is significant. ``--split`` (the expected treatment share)
adds a sample-ratio-mismatch check. Prints a table; ``--json`` prints the machine-readable result;
``--html FILE`` also writes a self-contained report with plots.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

from gensight.processor.analyse.experiment_stats import DEFAULT_ALPHA

_PROG = "gensight compare"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="OTLP JSON lines files ('-' = stdin, .gz ok)")
    parser.add_argument("--by", required=True, metavar="ATTRIBUTE",
                        help="span or resource attribute whose values are the arms (e.g. feature_flag.result.variant)")
    parser.add_argument("--control", metavar="VALUE", help="value of --by for the control arm")
    parser.add_argument("--treatment", metavar="VALUE", help="value of --by for the treatment arm")
    parser.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                        help="only calls whose span/resource attribute KEY equals VALUE (repeatable, all must hold)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="significance level, family-wise across metrics (default 0.05)")
    parser.add_argument("--split", type=float, metavar="SHARE",
                        help="expected treatment share of calls, e.g. 0.5: adds a sample-ratio-mismatch test")
    parser.add_argument("--config", metavar="FILE",
                        help="processor YAML config: its evaluations section (pass rule, join bounds) is used")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    parser.add_argument("--html", metavar="REPORT.html", help="also write a self-contained HTML report with plots")


def collect(files: list[str], by: str, where: dict[str, str], *, on_bad_line: Any = None,
            progress: bool | None = None, evaluations: Any = None) -> Any:
    """An :class:`ArmCollector` filled from ``files``, read and decoded as ``gensight replay``
    reads them (trace and logs lines, leniently); see :func:`collect_requests`."""
    from gensight.processor.commands.progress import read_decoded

    decoded = read_decoded(files, on_bad_line=on_bad_line, progress=progress)
    return collect_requests(((d.request, d.raw) for _name, _line_no, d in decoded), by, where,
                            evaluations=evaluations)


def collect_requests(requests: Iterable[tuple[Any, bytes | None]], by: str, where: dict[str, str], *,
                     evaluations: Any = None) -> Any:
    """An :class:`ArmCollector` filled from (request, raw bytes or None) pairs, normalised and
    joined exactly as the processor does: trace requests give calls (and span-event evaluation
    results), logs requests give evaluation results as log records; both reach the arms through
    the processor's bounded :class:`EvaluationJoin` (span id, else ``gen_ai.response.id``).
    ``evaluations``: the ``EvaluationsConfig`` (pass rule, join bounds; default the processor's).
    The join (its outcome counts) is left on the collector as ``join``."""
    from gensight.pricing import default_table
    from gensight.processor.analyse.comparison import ArmCollector
    from gensight.processor.normalise.evaluations import evaluations_from_logs, evaluations_from_spans
    from gensight.processor.normalise.normaliser import NormaliseConfig, Normaliser
    from gensight.processor.pipeline.evaluations import EvaluationJoin

    arms = ArmCollector(by, where)
    join = arms.join = EvaluationJoin(evaluations)
    # tenant ids are never read here: no hashing key is needed
    normaliser = Normaliser(NormaliseConfig(tenant_attributes=(), extra_attributes=arms.extra_attributes),
                            default_table(), b"")
    for request, raw in requests:
        if hasattr(request, "resource_logs"):  # evaluation results as OTLP log records
            records: Any = ()
            evals, malformed, _other = evaluations_from_logs(request)
        else:
            records = normaliser.normalise(request, raw).records
            arms.add_records(records)
            evals, malformed = evaluations_from_spans(request, raw)
        join.malformed += malformed
        joined = join.add_calls(records)  # waiting evaluations these calls judge
        joined.extend(join.join(evals))
        join.counted(len(joined), 0)
        arms.add_evaluations(joined)
        join.expire()
    join.flush()
    return arms


def evaluation_summary(join: Any) -> str | None:
    """One line on the evaluation results read, or None when there were none (stderr: the
    ``--json`` document is a contract and gets no new keys)."""
    counts = dict(join.counts)
    dropped = counts["dropped"] + join.malformed
    if not (counts["joined"] or counts["unjoined"] or dropped):
        return None
    return (f"{_PROG}: evaluation results: {counts['joined']} joined to their call, {counts['unjoined']} "
            f"unjoined (their call is not in the files, or beyond the join's bounds: list logs files "
            f"before or next to their span files), {dropped} dropped (malformed, or beyond the wait buffer)")


def _fmt(x: float | None, metric: str = "") -> str:
    if x is None:
        return "-"
    if metric.endswith("_usd"):
        return f"{x:.6g}"
    return f"{x:.4g}"


def render_table(result: Any) -> str:
    """The terminal table: one row per metric, then sample sizes and the SRM check."""
    header = ("metric", "control", "treatment", "diff", "rel", "CI (diff)", "p", "p adj", "sig", "better", "MDE")
    rows = [header]
    for m in result.metrics:
        rows.append((
            m.metric, _fmt(m.control, m.metric), _fmt(m.treatment, m.metric), _fmt(m.difference, m.metric),
            "-" if m.relative is None else f"{m.relative:+.1%}",
            f"[{_fmt(m.ci_low, m.metric)}, {_fmt(m.ci_high, m.metric)}]", f"{m.p_value:.3g}",
            f"{m.p_value_adjusted:.3g}", "yes" if m.significant else "no", m.better or "-", _fmt(m.mde, m.metric),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = [f"{result.by}: control {result.control!r} (n={result.n_control}) vs "
             f"treatment {result.treatment!r} (n={result.n_treatment}); alpha {result.alpha:g}, Holm-adjusted"]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    if result.srm_p_value is not None:
        verdict = "MISMATCH: arms are not split as expected" if result.srm_p_value < 0.001 else "ok"
        lines.append(f"sample ratio check: p = {result.srm_p_value:.3g} ({verdict})")
    if not result.metrics:
        lines.append("no metric has at least 2 values in both arms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from gensight.processor.analyse.comparison import compare_arms, parse_where
    from gensight.processor.commands.progress import missing_file

    try:
        where = parse_where(args.where)
    except ValueError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    if not 0.0 < args.alpha < 1.0:
        print(f"{_PROG}: --alpha must be in (0, 1)", file=sys.stderr)
        return 2
    if args.split is not None and not 0.0 < args.split < 1.0:
        print(f"{_PROG}: --split must be in (0, 1)", file=sys.stderr)
        return 2
    if (missing := missing_file(list(args.files))) is not None:
        print(f"{_PROG}: no such file: {missing}", file=sys.stderr)
        return 2
    if args.html:  # fail before reading hundreds of MB, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"{_PROG}: --html needs matplotlib: pip install 'gensight[report]'", file=sys.stderr)
            return 2
    from gensight.processor.config import ConfigError, load_config

    try:
        evaluations = load_config(args.config).evaluations
    except ConfigError as exc:
        print(f"{_PROG}: config error: {exc}", file=sys.stderr)
        return 2
    bad_lines = 0

    def on_bad(bad: Any) -> None:
        nonlocal bad_lines
        bad_lines += 1
        print(f"{_PROG}: {bad.source}:{bad.line_no}: skipped: {bad.reason}", file=sys.stderr)

    arms = collect(list(args.files), args.by, where, on_bad_line=on_bad, evaluations=evaluations)
    try:
        control, treatment = arms.pick(args.control, args.treatment)
    except ValueError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1
    absent = [v for v in (control, treatment) if v not in arms.arms]
    if absent:
        print(f"{_PROG}: no calls with {args.by}={absent[0]!r}; values seen: "
              f"{sorted(arms.arms)[:20]}", file=sys.stderr)
        return 1
    a, b = arms.arms[control], arms.arms[treatment]
    result = compare_arms(args.by, control, treatment, a, b, alpha=args.alpha, split=args.split)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(render_table(result))
    if args.html:
        from gensight.processor.export.report_html import write_report

        write_report(args.html, result, a, b)
        print(f"{_PROG}: report written to {args.html}", file=sys.stderr)
    if (summary := evaluation_summary(arms.join)) is not None:
        print(summary, file=sys.stderr)
    if arms.without_value or arms.overflow:
        print(f"{_PROG}: {arms.without_value} calls without {args.by}, {arms.overflow} beyond "
              f"the first arm values were not compared", file=sys.stderr)
    return 0
