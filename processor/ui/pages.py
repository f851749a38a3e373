"""The status page's HTML: one overview page (paginated, worst series first) and one page per series.

Everything that comes from data (series names, alert attributes, trace ids, URLs) is escaped with
``html.escape``; links are only ``http(s)`` URLs (runbooks, the trace URL template) or the page's
own paths. No script, no external resource: the page refreshes itself with a meta tag.

Bound: a page view is O(series) to copy and sort the rows (``StatusState.snapshot``) plus
O(``page_size``) HTML; charts are separate, lazily loaded images (``charts.py``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from urllib.parse import quote

from gensight.processor.ui.state import (
    RANK_FIRING_PAGE,
    RANK_FIRING_TICKET,
    RANK_PENDING,
    AlertState,
    SeriesDetail,
    SeriesRow,
    Snapshot,
)

REFRESH_S = 30
_RANK_CLASS = {RANK_FIRING_PAGE: "page", RANK_FIRING_TICKET: "ticket", RANK_PENDING: "pending"}
_RANK_TEXT = {RANK_FIRING_PAGE: "alerting (page)", RANK_FIRING_TICKET: "alerting (ticket)", RANK_PENDING: "pending"}

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.2em 0 .4em}
table{border-collapse:collapse;font-size:.85em;width:100%} th,td{padding:3px 6px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.page td:first-child{border-left:6px solid #d62728} tr.ticket td:first-child{border-left:6px solid #ff7f0e}
tr.pending td:first-child{border-left:6px solid #e7ba52} tr.ok td:first-child{border-left:6px solid #2ca02c}
.state{font-weight:600} tr.page .state,tr.ticket .state{color:#b00} .muted{color:#777}
img.spark{width:480px;height:60px} img.big{max-width:100%} .pager a,.pager span{margin-right:.6em}
code{font-size:.9em}
"""


def _fmt(v: float | None, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    return "–" if v is None else f"{v * scale:.{digits}g}{unit}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f} %"


def _time(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if ns else "–"


def series_path(sid: str) -> str:
    return "/ui/series/" + quote(sid, safe="")


def chart_path(sid: str, size: str) -> str:
    return f"/ui/chart/{quote(sid, safe='')}.svg?size={size}"


def trace_links(ids: tuple[str, ...], template: str) -> str:
    """Trace ids as links through ``analytics.alerts.trace_url_template``, as plain ids without one."""
    out = []
    for tid in ids:
        t = escape(tid)
        if template:
            url = escape(template.replace("{trace_id}", quote(tid, safe="")), quote=True)
            out.append(f'<a class="trace" data-trace-id="{t}" href="{url}">{t[:12]}…</a>')
        else:
            out.append(f'<code class="trace" data-trace-id="{t}">{t}</code>')
    return " ".join(out) or '<span class="muted">–</span>'


def _link(url: str, text: str) -> str:
    if not url.startswith(("http://", "https://")):
        return escape(url) if url else '<span class="muted">–</span>'
    return f'<a href="{escape(url, quote=True)}">{escape(text)}</a>'


def _head(title: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_S}">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>")


def _alerts_table(alerts: list[AlertState], template: str) -> str:
    if not alerts:
        return '<p class="muted" id="no-alerts">No active alerts.</p>'
    rows = []
    for a in alerts:
        explanation = "; ".join(f"{escape(k.removeprefix('gensight.'))}={escape(v)}" for k, v in a.explanation)
        rows.append(
            f'<tr class="{"page" if a.severity == "page" and a.state == "firing" else "ticket" if a.state == "firing" else "pending"}"'
            f' data-alert="{escape(a.alert, quote=True)}" data-series="{escape(a.series, quote=True)}">'
            f"<td>{escape(a.alert)}</td><td>{escape(a.series)}</td><td class=state>{escape(a.state)} ({escape(a.severity)})</td>"
            f'<td class="num">{a.value:.4g}</td><td class="num">{a.threshold:.4g}</td><td>{explanation or "–"}</td>'
            f"<td>{_time(a.since_ns)}</td><td>{_link(a.runbook_url, 'runbook')}</td>"
            f"<td>{trace_links(a.example_trace_ids, template)}</td></tr>")
    return ('<table id="alerts"><tr><th>alert</th><th>series</th><th>state</th><th>value</th><th>threshold / baseline</th>'
            "<th>explanation</th><th>since</th><th>runbook</th><th>example traces</th></tr>" + "".join(rows) + "</table>")


def _slo_table(snap: Snapshot) -> str:
    if not snap.slos:
        return '<p class="muted">No SLOs configured (analytics.slos).</p>'
    windows = ("5m", "1h", "6h", "3d")
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{escape(s.service)}</td>"
        + "".join(f'<td class="num">{_fmt(s.burn_rates.get(w))}</td>' for w in windows)
        + f'<td class="num">{_pct(s.budget_remaining)}</td></tr>'
        for s in snap.slos)
    return ('<table id="slos"><tr><th>SLO</th><th>service</th>' + "".join(f"<th>burn {w}</th>" for w in windows)
            + "<th>budget remaining</th></tr>" + rows + "</table>")


def _row(r: SeriesRow) -> str:
    cls = _RANK_CLASS.get(r.rank, "ok")
    state = _RANK_TEXT.get(r.rank, "ok")
    names = ", ".join(sorted({a.alert for a in r.alerts}))
    sid = escape(r.sid, quote=True)
    return (f'<tr class="{cls}" data-series="{sid}" data-state="{cls}">'
            f'<td><a href="{escape(series_path(r.sid), quote=True)}">{escape(r.sid)}</a></td>'
            f"<td class=state>{state}{' · ' + escape(names) if names else ''}</td>"
            f'<td class="num">{r.calls if r.calls is not None else "–"}</td>'
            f'<td class="num">{_pct(r.error_rate)}</td><td class="num">{_fmt(r.p95_s, 3, 1.0, " s")}</td>'
            f'<td class="num">{_fmt(r.cost_per_call_usd, 3, 1.0, " $")}</td><td class="num">{_fmt(r.drift)}</td>'
            f'<td class="num">{_fmt(r.anomaly)}</td><td class="num">{_fmt(r.quality)}</td>'
            f'<td><img class="spark" loading="lazy" alt="recent windows of {sid}" '
            f'src="{escape(chart_path(r.sid, "small"), quote=True)}"></td></tr>')


def overview(snap: Snapshot, page: int, page_size: int, template: str) -> str:
    total = len(snap.rows)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    rows = snap.rows[(page - 1) * page_size: page * page_size]
    firing = sum(a.state == "firing" for a in snap.alerts)
    pager = "".join(f'<a href="/ui/?page={p}">{p}</a>' if p != page else f"<span>[{p}]</span>"
                    for p in range(max(1, page - 5), min(pages, page + 5) + 1))
    dropped = f" · {snap.dropped_series} series not shown (cap)" if snap.dropped_series else ""
    return (_head("Gensight status")
            + f'<h1>Gensight status</h1><p class="muted">{total} series · {firing} firing alert(s){dropped} · '
              f"refreshes every {REFRESH_S} s · read-only</p>"
            + "<h2>Active alerts</h2>" + _alerts_table(snap.alerts, template)
            + "<h2>SLOs</h2>" + _slo_table(snap)
            + f'<h2>Series (worst first) — page {page} of {pages}</h2><p class="pager">{pager}</p>'
            + '<table id="series"><tr><th>series</th><th>state</th><th>calls</th><th>errors</th><th>p95</th>'
              "<th>cost/call</th><th>drift</th><th>anomaly</th><th>quality</th>"
              "<th>p95 latency · error rate · cost rate · anomaly (recent windows; red: alert)</th></tr>"
            + "".join(_row(r) for r in rows) + "</table>"
            + f'<p class="pager">{pager}</p></body></html>')


def series_page(d: SeriesDetail, template: str) -> str:
    last = d.history[-1] if d.history else None
    hist_rows = "".join(
        f'<tr><td>{_time(a.time_ns)}</td><td>{escape(a.alert)}</td><td class=state>{escape(a.state)}</td>'
        f'<td>{escape(a.severity)}</td><td class="num">{a.value:.4g}</td><td class="num">{a.threshold:.4g}</td>'
        f"<td>{_link(a.runbook_url, 'runbook')}</td><td>{trace_links(a.example_trace_ids, template)}</td></tr>"
        for a in d.alert_history)
    slow = tuple(t for t, _ in d.exemplars)
    return (_head(f"Gensight · {d.sid}")
            + f'<p><a href="/ui/">← all series</a></p><h1>{escape(d.sid)}</h1>'
            + f'<p class="muted">latest window ends {_time(last.time_ns if last else 0)} · '
              f"{len(d.history)} windows shown · exemplars of the latest window (slowest call, a failed call): "
              f"{trace_links(slow, template)}</p>"
            + f'<img class="big" alt="charts of {escape(d.sid, quote=True)}" src="{escape(chart_path(d.sid, "large"), quote=True)}">'
            + "<h2>Alert history</h2>"
            + ('<table id="history"><tr><th>time</th><th>alert</th><th>state</th><th>severity</th><th>value</th>'
               "<th>threshold</th><th>runbook</th><th>example traces</th></tr>" + hist_rows + "</table>"
               if hist_rows else '<p class="muted">No alerts on this series.</p>')
            + "</body></html>")
