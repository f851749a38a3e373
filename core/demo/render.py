"""Renderers for the demo's view-model: a rich live screen for terminals, plain lines otherwise.

Over SSH without a TTY, in CI, or piped into a file, the demo prints one line per closed window
(``window_line``) so logs stay greppable; on a terminal it redraws a rich layout (``live_view``).
Both only read ``DemoView``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gensight.demo.view import ANOMALY_ALERT_THRESHOLD, DRIFT_ALERT_THRESHOLD, DemoView, SeriesId, SeriesState

if TYPE_CHECKING:
    from rich.console import RenderableType

NS_PER_S = 1_000_000_000
BURN_WINDOWS_SHOWN = ("5m", "30m", "1h", "6h")
PAGE_BURN_RATE = 14.4
OPERATION_SHORT = {"execute_tool": "tool", "embeddings": "embed", "text_completion": "completion"}


@dataclass(frozen=True)
class RunInfo:
    """What the renderers need to know about the run besides the metric values."""

    event_base_ns: int
    event_end_ns: int
    window_s: float
    speed: float
    incident_start_ns: int
    incident_model: str
    incident_text: str
    services: tuple[str, ...] = ()

    @property
    def windows_total(self) -> int:
        return max(1, round((self.event_end_ns - self.event_base_ns) / (self.window_s * NS_PER_S)))

    def minute(self, event_ns: int) -> str:
        """Event time as an offset from the start of the simulated period, e.g. ``T+23m``."""
        seconds = (event_ns - self.event_base_ns) / NS_PER_S
        if abs(seconds) < 3600:
            return f"T+{int(seconds // 60)}m{int(seconds % 60):02d}s" if seconds % 60 else f"T+{int(seconds // 60)}m"
        return f"T+{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _fmt(value: float | None, fmt: str, none: str = "-") -> str:
    return none if value is None else format(value, fmt)


def _max_burn(view: DemoView, window: str) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for name, slo in view.slos.items():
        value = slo.burn.get(window)
        if value is not None and (best is None or value > best[1]):
            best = (name, value)
    return best


def window_line(view: DemoView, info: RunInfo) -> str:
    """One log line summarising the latest closed window."""
    window = view.last_window
    if window is None:
        return "no window closed yet"
    number = round((window.end_ns - info.event_base_ns) / (info.window_s * NS_PER_S))
    calls, errors = view.window_totals()
    parts = [
        (f"window {number:>3}/{info.windows_total}" if number <= info.windows_total else f"window {number:>3} tail")
        + f" {info.minute(window.end_ns):>7}",
        "INCIDENT" if view.incident_active(window) else "normal  ",
        f"calls={calls:.0f} err={(errors / calls if calls else 0.0):.1%}",
    ]
    incident_series = [
        (sid, s) for sid, s in view.series.items() if view.is_incident_series(sid) and s.updated_window == view.window_index
    ]
    for sid, state in sorted(incident_series):
        parts.append(
            f"{sid.service}/{sid.target}: p95={_fmt(state.p95_s, '.2f')}s "
            f"cost/call=${_fmt(state.cost_per_call_usd, '.5f')} quality={_fmt(state.quality, '.2f')} "
            f"drift={_fmt(state.drift, '.2f')} anomaly={_fmt(state.anomaly, '.2f')}"
        )
    burn = _max_burn(view, "1h") or _max_burn(view, "5m")
    if burn:
        parts.append(f"max burn(1h)={burn[1]:.1f} [{burn[0]}]")
    alerts = sorted({f"{a.name}({a.severity})" if a.severity else a.name for a in view.active_alerts})
    parts.append("alerts=" + (",".join(alerts) if alerts else "none"))
    if view.detection is not None and view.detection.window_index == view.window_index:
        parts.append(f"DETECTED {view.detection.windows_after_injection} window(s) after injection")
    return " | ".join(parts)


def summary_lines(view: DemoView, info: RunInfo, output_path: str | None, wall_s: float) -> list[str]:
    """The closing summary: did we detect the incident, how fast, which alerts fired, where files are."""
    calls, errors, cost = view.totals()
    lines = [
        "",
        "=== Gensight demo summary ===",
        f"simulated {info.minute(info.event_end_ns)} of traffic from {len(info.services) or '?'} services "
        f"in {wall_s:.0f} s wall-clock ({len(view.windows)} windows of {info.window_s:g} s event time)",
        f"calls={calls:.0f} errors={errors:.0f} cost=${cost:.4f}",
        f"incident: {info.incident_text} at {info.minute(info.incident_start_ns)}",
    ]
    if view.detection is not None:
        d = view.detection
        lines.append(
            f"incident DETECTED: yes, {d.windows_after_injection} window(s) after injection "
            f"(window {d.window_index + 1}); signals: {'; '.join(d.signals)}"
        )
    else:
        lines.append("incident DETECTED: no (no alert, anomaly or drift signal on the incident model)")
    if view.fired_alerts:
        lines.append("alerts fired:")
        for alert, index in sorted(view.fired_alerts.items(), key=lambda item: item[1]):
            where = f"{alert.service}/{alert.target}".rstrip("/")
            when = info.minute(view.windows[index].end_ns)
            if alert in view.false_alarms:
                pre = " (before the incident)"
            elif not view.affected_service(alert.service):
                pre = f" (a service that does not call {info.incident_model})"
            else:
                pre = ""
            lines.append(f"  - {alert.name} [{alert.severity or '-'}] on {where} at {when}{pre}")
    else:
        lines.append("alerts fired: none")
    if view.spans:
        lines.append("processor spans: " + ", ".join(f"{k}={v:.0f}" for k, v in sorted(view.spans.items())))
    if output_path:
        lines.append(f"OTLP/JSON metrics written to: {output_path}")
    return lines


# --- rich live view -------------------------------------------------------------------------

def _style_ratio(value: float | None, warn: float, bad: float) -> str:
    if value is None:
        return "dim"
    if value >= bad:
        return "bold red"
    if value >= warn:
        return "yellow"
    return "green"


def _series_rows(view: DemoView) -> list[tuple[SeriesId, SeriesState]]:
    return sorted(view.series.items(), key=lambda item: (item[0].service, item[0].operation, item[0].target))


def live_view(
    view: DemoView, info: RunInfo, now_event_ns: int, alert_log: list[str] | None = None,
    height: int | None = None,
) -> RenderableType:
    """The full-screen layout for one refresh; with ``height``, the list of alert transitions is
    cut so the whole view fits the terminal (a live display taller than the screen flickers)."""
    from rich import box
    from rich.console import Group
    from rich.panel import Panel
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    total_ns = max(1, info.event_end_ns - info.event_base_ns)
    done_ns = min(total_ns, max(0, now_event_ns - info.event_base_ns))
    incident_on = now_event_ns >= info.incident_start_ns
    header = Text()
    header.append("Gensight demo ", style="bold cyan")
    header.append(
        f"event time {info.minute(info.event_base_ns + done_ns)} of {info.minute(info.event_end_ns)} "
        f"(x{info.speed:g}), windows of {info.window_s:g} s, {len(view.windows)} closed\n"
    )
    header.append("incident: ", style="bold")
    header.append(
        f"{info.incident_text} at {info.minute(info.incident_start_ns)} ",
    )
    header.append("ACTIVE" if incident_on else "pending", style="bold red" if incident_on else "dim")
    if view.detection is not None:
        header.append(
            f"  DETECTED {view.detection.windows_after_injection} window(s) after injection", style="bold green"
        )
    bar = ProgressBar(total=total_ns, completed=done_ns, width=60)

    table = Table(
        title="per-series SLIs (latest window)", expand=True, title_justify="left", box=box.SIMPLE_HEAD,
        collapse_padding=True, pad_edge=False,
    )
    for col, justify in (
        ("service", "left"), ("op", "left"), ("model/tool/source", "left"), ("calls", "right"),
        ("err%", "right"), ("p95 s", "right"), ("$/call", "right"), ("cost $", "right"),
        ("drift", "right"), ("anom", "right"),
    ):
        # numbers keep their width; on a narrow terminal the names are cut instead
        table.add_column(
            col, justify=justify, no_wrap=True,  # type: ignore[arg-type]
            min_width=len(col) if justify == "right" else None,
        )
    index = view.window_index
    for sid, s in _series_rows(view):
        stale = s.updated_window != index
        row_style = "dim" if stale else ("bold" if view.is_incident_series(sid) and incident_on else "")
        err = None if stale else s.error_rate
        table.add_row(
            sid.service, OPERATION_SHORT.get(sid.operation, sid.operation), sid.target,
            f"{s.window_calls:.0f}" if not stale else "0",
            Text(_fmt(None if err is None else err * 100, ".1f"), style=_style_ratio(err, 0.02, 0.05)),
            _fmt(s.p95_s, ".2f"),
            _fmt(s.cost_per_call_usd, ".5f"),
            f"{s.cost_total_usd:.3f}",
            Text(_fmt(s.drift, ".2f"), style=_style_ratio(s.drift, DRIFT_ALERT_THRESHOLD / 2, DRIFT_ALERT_THRESHOLD)),
            Text(_fmt(s.anomaly, ".2f"), style=_style_ratio(s.anomaly, 0.5, ANOMALY_ALERT_THRESHOLD)),
            style=row_style,
        )

    slo_table = Table(
        title="SLO burn rates (page at 14.4 over 1h and 5m)", expand=True, title_justify="left", box=box.SIMPLE_HEAD
    )
    slo_table.add_column("slo", no_wrap=True)
    slo_table.add_column("service", no_wrap=True)
    for w in BURN_WINDOWS_SHOWN:
        slo_table.add_column(f"burn {w}", justify="right")
    slo_table.add_column("budget left", justify="right")
    for name, slo in sorted(view.slos.items()):
        cells = [
            Text(_fmt(slo.burn.get(w), ".1f"), style=_style_ratio(slo.burn.get(w), 1.0, PAGE_BURN_RATE))
            for w in BURN_WINDOWS_SHOWN
        ]
        budget = slo.budget_remaining
        if budget is None:
            budget_text = Text("-", style="dim")
        elif budget <= 0:
            budget_text = Text("exhausted", style="bold red")
        else:
            budget_text = Text(f"{budget:.0%}", style=_style_ratio(1 - budget, 0.5, 0.8))
        slo_table.add_row(name, slo.service, *cells, budget_text)
    if not view.slos:
        slo_table.add_row("(no SLO points yet)", "", *([""] * len(BURN_WINDOWS_SHOWN)), "")

    alerts = Text()
    if view.active_alerts:
        lines = []
        for alert, count in sorted(view.active_alerts.items()):
            where = f"{alert.service}/{alert.target}".rstrip("/")
            times = f" x{count:.0f}" if count > 1 else ""
            lines.append(f"FIRING {alert.name} [{alert.severity or '-'}] {where}{times}")
        alerts.append("\n".join(lines), style="bold red")
    else:
        alerts.append("no active alerts", style="green")
    if alert_log and height is not None:
        # header panel 5; tables: title, top edge, head, rule, bottom edge = 5 each; alerts panel 2; totals 1
        used = 5 + 5 + len(view.series) + 5 + max(1, len(view.slos)) + 2 + max(1, len(view.active_alerts)) + 1
        room = height - used - 1  # the transitions' own heading line
        alert_log = alert_log[-room:] if room > 0 else []
    if alert_log:
        alerts.append("\nlatest transitions (OTLP log records):", style="bold")
        for entry in alert_log:
            alerts.append("\n  " + entry, style="red" if entry.startswith("FIRING") else "dim")
    calls, errors, cost = view.totals()
    rates = ", ".join(f"{svc} ${rate:.4f}/min" for svc, rate in sorted(view.service_cost_rate.items()))
    totals = Text(
        f"total calls {calls:.0f}, errors {errors:.0f}, cost ${cost:.4f}" + (f"; cost rate: {rates}" if rates else ""),
        style="dim",
    )
    return Group(
        Panel(Group(header, bar), border_style="cyan"),
        table,
        slo_table,
        Panel(alerts, title="active alerts", title_align="left"),
        totals,
    )
