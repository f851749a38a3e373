"""The ``gensight compare --html`` report: one self-contained HTML file, table and plots.

Plots are drawn by matplotlib (the ``report`` extra) as SVG and inlined as ``data:`` images, so the
file opens anywhere with no network and no script: latency and cost distributions per arm as
empirical CDFs, and each metric's relative difference with its confidence interval.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

CONTROL_COLOUR = "#4c72b0"
TREATMENT_COLOUR = "#dd8452"
FIGURE_SIZE_IN = (6.4, 3.6)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.sig td { background: #fff4e0; }
.plots img { max-width: 48%; margin: 0.5em 1% 0 0; }
.note { color: #555; font-size: 0.9em; }
"""


def _svg_data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _cdf_plot(title: str, unit: str, control: np.ndarray, treatment: np.ndarray, labels: tuple[str, str],
              log_x: bool) -> str:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    fig = Figure(figsize=FIGURE_SIZE_IN)
    ax = fig.subplots()
    for values, label, colour in ((control, labels[0], CONTROL_COLOUR), (treatment, labels[1], TREATMENT_COLOUR)):
        if len(values) == 0:
            continue
        xs = np.sort(values)
        ax.step(xs, np.arange(1, len(xs) + 1) / len(xs), where="post", label=label, color=colour)
    if log_x and len(control) and len(treatment) and min(control.min(), treatment.min()) > 0:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # log minor labels overlap
    ax.set_title(title)
    ax.set_xlabel(unit)
    ax.set_ylabel("share of calls ≤ x")
    ax.grid(alpha=0.3)
    ax.legend()
    return _svg_data_uri(fig)


def _difference_plot(result: Any) -> str | None:
    from matplotlib.figure import Figure

    rows = [m for m in result.metrics if m.control]
    if not rows:
        return None
    fig = Figure(figsize=(FIGURE_SIZE_IN[0], 0.45 * len(rows) + 1.2))
    ax = fig.subplots()
    ys = np.arange(len(rows))[::-1]
    for y, m in zip(ys, rows, strict=True):
        colour = TREATMENT_COLOUR if m.significant else "#888888"
        ax.errorbar(m.difference / m.control * 100, y, xerr=[[(m.difference - m.ci_low) / abs(m.control) * 100],
                                                         [(m.ci_high - m.difference) / abs(m.control) * 100]],
                    fmt="o", color=colour, capsize=3)
    ax.axvline(0, color="#333333", linewidth=0.8)
    ax.set_yticks(ys)
    ax.set_yticklabels([m.metric for m in rows])
    ax.set_xlabel("treatment vs control, % of control (interval: confidence interval)")
    ax.set_title("Differences")
    ax.grid(axis="x", alpha=0.3)
    return _svg_data_uri(fig)


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.4g}"


def render_report(result: Any, control: Any, treatment: Any) -> str:
    """The report's HTML for a :class:`Comparison` and its two :class:`Arm` s."""
    e = html.escape
    labels = (f"control: {result.control}", f"treatment: {result.treatment}")
    plots = [
        _cdf_plot("Latency", "seconds", np.frombuffer(control.latency_s), np.frombuffer(treatment.latency_s),
                  labels, log_x=True),
    ]
    if len(control.cost_usd) and len(treatment.cost_usd):
        plots.append(_cdf_plot("Cost per call", "USD", np.frombuffer(control.cost_usd),
                               np.frombuffer(treatment.cost_usd), labels, log_x=True))
    diff = _difference_plot(result)
    if diff:
        plots.append(diff)
    rows = []
    for m in result.metrics:
        rows.append(
            f'<tr class="{"sig" if m.significant else ""}"><td>{e(m.metric)}</td><td>{_num(m.control)}</td>'
            f"<td>{_num(m.treatment)}</td><td>{_num(m.difference)}</td>"
            f"<td>{'–' if m.relative is None else f'{m.relative:+.1%}'}</td>"
            f"<td>[{_num(m.ci_low)}, {_num(m.ci_high)}]</td><td>{m.p_value:.3g}</td>"
            f"<td>{m.p_value_adjusted:.3g}</td><td>{'yes' if m.significant else 'no'}</td>"
            f"<td>{e(m.better or '–')}</td><td>{_num(m.mde)}</td></tr>"
        )
    srm = "" if result.srm_p_value is None else f"<p>Sample-ratio check: p = {result.srm_p_value:.3g}</p>"
    images = "".join(f'<img alt="plot" src="{uri}">' for uri in plots)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gensight compare: {e(result.by)}</title><style>{_STYLE}</style></head>
<body>
<h1>{e(result.by)}: {e(result.control)} vs {e(result.treatment)}</h1>
<p>Control <b>{e(result.control)}</b>: {result.n_control} calls. Treatment <b>{e(result.treatment)}</b>:
{result.n_treatment} calls. Significance level {result.alpha:g}, Holm-adjusted across the metrics below.</p>
{srm}
<table><thead><tr><th>metric</th><th>control</th><th>treatment</th><th>difference</th><th>relative</th>
<th>confidence interval</th><th>p</th><th>p (Holm)</th><th>significant</th><th>better</th><th>MDE</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="note">Rates: two-proportion z-test, Newcombe interval. Means: Mann–Whitney p-value, bootstrap interval.
Quantiles: bootstrap interval and p-value. MDE: the difference detectable with 80 % power at these sample sizes.</p>
<div class="plots">{images}</div>
</body></html>
"""


def write_report(path: str | Path, result: Any, control: Any, treatment: Any) -> None:
    Path(path).write_text(render_report(result, control, treatment), encoding="utf-8")
