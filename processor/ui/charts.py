"""Server-side SVG charts of a series' recent windows, drawn with matplotlib.

Why server-side SVG: the page must work with no internet (no CDN, no JavaScript library) and in
any browser; matplotlib is a well-kept plotting library, and SVG scales and stays small. Only the
object API is used (``Figure``, never ``pyplot``: no global state, no GUI backend), and drawing
is serialised by a lock, so handler threads can share it.

Cost: a small chart (four sparklines) takes tens of milliseconds, so the page never draws charts
inline: each is its own lazily loaded ``<img>``, cached by (series, size, state version) in a
bounded LRU (``CACHE_ENTRIES``).
"""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Sequence

from gensight.processor.ui.state import WindowPoint

CACHE_ENTRIES = 512
NS_PER_MIN = 60_000_000_000
# (title, WindowPoint field, scale, unit)
PANELS = (
    ("p95 latency", "p95_s", 1.0, "s"),
    ("error rate", "error_rate", 100.0, "%"),
    ("cost rate", "cost_rate_usd_per_min", 1.0, "USD/min"),
    ("anomaly score", "anomaly", 1.0, ""),
)
ALERT_COLOUR = "#d62728"
LINE_COLOUR = "#1f77b4"
SMALL = "small"
LARGE = "large"

_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str, int], str] = OrderedDict()


def chart_svg(cache_key: tuple[str, str, int], history: Sequence[WindowPoint],
              periods: Sequence[tuple[int, int | None, str]], size: str = SMALL) -> str:
    """The SVG for one series: four panels over its recent windows, alert periods shaded."""
    with _lock:
        svg = _cache.get(cache_key)
        if svg is not None:
            _cache.move_to_end(cache_key)
            return svg
        svg = _draw(history, periods, size)
        _cache[cache_key] = svg
        while len(_cache) > CACHE_ENTRIES:
            _cache.popitem(last=False)
        return svg


def _draw(history: Sequence[WindowPoint], periods: Sequence[tuple[int, int | None, str]], size: str) -> str:
    from matplotlib import rcParams
    from matplotlib.figure import Figure

    rcParams["svg.fonttype"] = "none"  # text stays text: smaller files, selectable labels
    rcParams["svg.hashsalt"] = "gensight"  # stable ids: identical input, identical SVG
    small = size == SMALL
    fig = Figure(figsize=(7.2, 0.9) if small else (9.0, 7.0), dpi=72)
    axes = fig.subplots(1, 4) if small else fig.subplots(4, 1, sharex=True)
    end_ns = history[-1].time_ns if history else 0
    xs = [(p.time_ns - end_ns) / NS_PER_MIN for p in history]
    for ax, (title, field, scale, unit) in zip(axes, PANELS, strict=True):
        pts = [(x, getattr(p, field) * scale) for x, p in zip(xs, history, strict=True) if getattr(p, field) is not None]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], color=LINE_COLOUR, linewidth=1.2 if small else 1.6)
        for start, end, _ in periods:
            lo = (start - end_ns) / NS_PER_MIN
            hi = 0.0 if end is None else (end - end_ns) / NS_PER_MIN
            if xs and hi >= xs[0]:
                ax.axvspan(max(lo, xs[0]), hi, color=ALERT_COLOUR, alpha=0.18, linewidth=0)
        if xs and xs[0] < 0:
            ax.set_xlim(xs[0], 0.0)  # the windows' span, also for a panel with no values (no cost)
        last = f" {pts[-1][1]:.3g}{unit}" if pts else " –"
        if small:
            ax.set_title(title + last, fontsize=8, loc="left", pad=2)
            ax.set_xticks([])
            ax.set_yticks([])  # sparklines: the title carries the latest value
        else:
            ax.set_title(f"{title} ({unit})" if unit else title, fontsize=10, loc="left")
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    if not small:
        axes[-1].set_xlabel("minutes before the latest window (event time); shaded: alert pending/firing", fontsize=9)
    if small:
        fig.subplots_adjust(left=0.01, right=0.99, bottom=0.04, top=0.78, wspace=0.08)  # tight_layout costs more
    else:
        fig.tight_layout(pad=1.0)
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()
