"""Render time of the Prometheus scrape for ~2,000 series: prometheus_client's encoders (today's
``PrometheusStore.render``) against the hand-written text writer it replaced (issue 14, part 4).

The old writer is kept below, only here, as the baseline: it reads the same ``store.snapshot()``,
so both sides pay the same snapshot copy and differ only in how the text is made. Before timing,
the bench checks that both produce the same (sample name, labels) set and values.

The store holds what the processor exports for ``--groups`` series (service x model): calls,
a duration histogram (the semconv's 14 duration buckets, two exemplars), input/output tokens,
p50/p95/p99 latency, availability and cost per call -- 9 store series per group, so the default
223 groups are 2,007 series (5,575 samples). Rounds interleave the renderers; best round of each
(noise only adds time) and the ratio new / old from the same run.

    nice python bench/prometheus_render.py [--groups 223] [--rounds 5] [--repeat 10]
"""

from __future__ import annotations

import argparse
import math
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from prometheus_client.parser import parse_labels

from gensight.processor.export.prometheus import PrometheusStore
from gensight.processor.export.prometheus_exposition import Family, Hist, Series, Summary, go_float
from gensight.processor.export.prometheus_exposition import render as render_exposition

DURATION_BOUNDS = [0.01 * 2**i for i in range(14)]  # 0.01 ... 81.92 s


def _kv(target: Any, attrs: dict[str, str]) -> None:
    for k, v in attrs.items():
        target.add(key=k).value.string_value = v


def build_request(groups: int) -> ExportMetricsServiceRequest:
    req = ExportMetricsServiceRequest()
    for g in range(groups):
        rm = req.resource_metrics.add()
        _kv(rm.resource.attributes, {"service.name": f"svc-{g % 20}"})
        sm = rm.scope_metrics.add()
        series = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                  "gen_ai.request.model": f"model-{g}"}
        m = sm.metrics.add(name="gensight.calls", unit="{call}")
        m.sum.is_monotonic = True
        _kv(m.sum.data_points.add(as_int=1000 + g).attributes, {**series, "outcome": "ok"})
        m = sm.metrics.add(name="gensight.call.duration", unit="s")
        counts = [g % 7 + i for i in range(len(DURATION_BOUNDS) + 1)]
        dp = m.histogram.data_points.add(count=sum(counts), sum=12.5 + g, explicit_bounds=DURATION_BOUNDS,
                                         bucket_counts=counts)
        _kv(dp.attributes, series)
        for i, value in enumerate((3.0, 0.03)):
            dp.exemplars.add(as_double=value, trace_id=(g * 2 + i + 1).to_bytes(16, "big"),
                             span_id=(g * 2 + i + 1).to_bytes(8, "big"), time_unix_nano=1_700_000_000_000_000_000)
        m = sm.metrics.add(name="gensight.tokens", unit="{token}")
        m.sum.is_monotonic = True
        for kind in ("input", "output"):
            _kv(m.sum.data_points.add(as_int=50_000 + g).attributes, {**series, "gen_ai.token.type": kind})
        m = sm.metrics.add(name="gensight.sli.latency", unit="s")
        for q, v in (("0.5", 0.4), ("0.95", 1.9), ("0.99", 3.1)):
            _kv(m.gauge.data_points.add(as_double=v).attributes, {**series, "quantile": q})
        for name, value in (("gensight.sli.availability", 0.998), ("gensight.sli.cost_per_call", 0.000125)):
            _kv(sm.metrics.add(name=name).gauge.data_points.add(as_double=value).attributes, series)
    return req


# ------------------------------------------------------------------ the replaced hand-written writer


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value: str, openmetrics: bool) -> str:
    text = value.replace("\\", "\\\\").replace("\n", "\\n")
    return text.replace('"', '\\"') if openmetrics else text


def _labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels) + "}"


def _old_exemplar_suffixes(h: Hist) -> dict[int, str]:
    out: dict[int, str] = {}
    for e in h.exemplars:
        if not math.isfinite(e.value):
            continue
        labels = (("trace_id", e.trace_id), ("span_id", e.span_id)) if e.span_id else (("trace_id", e.trace_id),)
        out[bisect_left(h.bounds, e.value)] = f" # {_labels_text(labels)} {go_float(e.value)} {e.time_unix_nano / 1e9:.3f}"
    return out


def old_render(families: dict[str, Family], series: list[Series], openmetrics: bool) -> str:
    by_family: dict[str, list[tuple[Any, Any]]] = {}
    for (fam_key, labels), value in series:
        by_family.setdefault(fam_key, []).append((labels, value))
    out: list[str] = []
    for name in sorted(by_family):
        fam = families[name]
        out.append(f"# HELP {name} {_escape_help(fam.help, openmetrics)}")
        out.append(f"# TYPE {name} {fam.type}")
        for labels, value in sorted(by_family[name], key=lambda x: x[0]):
            if isinstance(value, Hist):
                by_bucket = _old_exemplar_suffixes(value) if openmetrics else {}
                cumulative = 0
                for i, (bound, n) in enumerate(zip(value.bounds, value.counts[:-1], strict=True)):
                    cumulative += n
                    out.append(f"{name}_bucket{_labels_text(labels + (('le', go_float(bound)),))} {cumulative}"
                               f"{by_bucket.get(i, '')}")
                out.append(f"{name}_bucket{_labels_text(labels + (('le', '+Inf'),))} {value.count_value}"
                           f"{by_bucket.get(len(value.bounds), '')}")
                if value.sum_value is not None:
                    out.append(f"{name}_sum{_labels_text(labels)} {go_float(value.sum_value)}")
                out.append(f"{name}_count{_labels_text(labels)} {value.count_value}")
            elif isinstance(value, Summary):
                for q, v in value.quantiles:
                    out.append(f"{name}{_labels_text(labels + (('quantile', go_float(q)),))} {go_float(v)}")
                out.append(f"{name}_sum{_labels_text(labels)} {go_float(value.sum_value)}")
                out.append(f"{name}_count{_labels_text(labels)} {int(value.count_value)}")
            else:
                out.append(f"{name}{_labels_text(labels)} {value if isinstance(value, int) else go_float(value)}")
    if openmetrics:
        out.append("# EOF")
    return "\n".join(out) + ("\n" if out else "")


# ------------------------------------------------------------------ measurement


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, exemplars cut off; enough to compare the two writers."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        body = line.split(" # ", 1)[0]
        head, _, value = body.rpartition(" ")
        name, _, labels = head.partition("{")
        out[(name, frozenset(parse_labels(labels[:-1]).items()))] = float(value)
    return out


def best_ms(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", type=int, default=223)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()

    store = PrometheusStore(series_ttl_s=0)
    store.update(build_request(args.groups))
    for openmetrics in (False, True):
        old, new = samples(old_render(*store.snapshot(), openmetrics)), samples(store.render(openmetrics))
        assert old == new, f"the writers disagree (openmetrics={openmetrics}): {len(set(old) ^ set(new))} samples"
    print(f"{store.stats().series} series, {len(samples(store.render()))} samples")

    cases: dict[str, Callable[[], object]] = {
        "old classic": lambda: old_render(*store.snapshot(), False),
        "new classic": lambda: render_exposition(*store.snapshot(), False),  # uncached: store.render reuses its text
        "old openmetrics": lambda: old_render(*store.snapshot(), True),
        "new openmetrics": lambda: render_exposition(*store.snapshot(), True),
    }
    best = dict.fromkeys(cases, math.inf)
    for _ in range(args.rounds):
        for name, fn in cases.items():
            best[name] = min(best[name], best_ms(fn, args.repeat))
    for fmt in ("classic", "openmetrics"):
        old_ms, new_ms = best[f"old {fmt}"], best[f"new {fmt}"]
        print(f"{fmt:12s} old {old_ms:7.1f} ms   new {new_ms:7.1f} ms   new/old {new_ms / old_ms:.2f}")


if __name__ == "__main__":
    main()
