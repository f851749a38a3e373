"""Cost of the signal-to-trace work: exemplars, example-trace candidates and the status page.

(a) baseline, measured in the same run: the pipeline's per-series grouping + the SLI analyser over
    traced call records, with the exemplar tracking switched off (no trace/span id columns, no
    ``_track_exemplars``) — the processor before exemplars;
(b) the same with exemplars on (what ships); b/a is the exemplars' hot-path cost;
(c) (b) plus the alert example tracker (``analyse/examples.py``) observing the same batches;
    c/a adds the candidate tracking.
Records: 20 batches of 2,048 calls, 50 series, lognormal durations, 2 % errors, every call traced.
Then the status page at 2,000 series: one page view (snapshot, severity sort, 50 rows of HTML)
and one small and one large matplotlib chart of 180 windows.

    python bench/trace_links.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from gensight.processor.analyse import sli
from gensight.processor.analyse.examples import ExampleTracker
from gensight.processor.pipeline import series
from gensight.processor.pipeline.series import RecordBatch
from gensight.processor.points import Window
from gensight.processor.records import CallRecord

S = 1_000_000_000
BATCHES, BATCH, SERIES = 20, 2048, 50


def records(seed: int) -> list[list[CallRecord]]:
    rng = random.Random(seed)
    out = []
    n = 0
    for _ in range(BATCHES):
        batch = []
        for _ in range(BATCH):
            n += 1
            d = rng.lognormvariate(-1, 1)
            end = n * 1000
            err = rng.random() < 0.02
            batch.append(CallRecord("chat", "svc", "openai", f"m{n % SERIES}", end - int(d * S), end, d, 100, 20,
                                    None, 0.001, False, err, "Timeout" if err else None,
                                    trace_id=n.to_bytes(16, "big"), span_id=n.to_bytes(8, "big")))
        out.append(batch)
    return out


def run(batches: list[list[CallRecord]], exemplars: bool, examples: bool) -> float:
    real_positions, real_track = series._COLUMN_POSITIONS, sli._track_exemplars
    if not exemplars:  # the processor before this work: no id columns, no exemplar tracking
        ids = {CallRecord._fields.index("trace_id"), CallRecord._fields.index("span_id")}
        series._COLUMN_POSITIONS = tuple(p for p in real_positions if p not in ids)
        sli._track_exemplars = lambda a, c: None
    try:
        analyser, tracker, w = sli.SLIAnalyser(), ExampleTracker(), Window(0, 60 * S)
        started = time.perf_counter()
        for b in batches:
            rb = RecordBatch(b)
            analyser.observe(w, rb)
            if examples:
                tracker.observe(w, rb)
        analyser.close(w)
        tracker.close(w)
        return time.perf_counter() - started
    finally:
        series._COLUMN_POSITIONS, sli._track_exemplars = real_positions, real_track


def status_page() -> tuple[float, float, float]:
    from gensight.processor.export.metric_builder import build_request
    from gensight.processor.ui import charts, pages
    from gensight.processor.ui.state import StatusState, WindowPoint

    state, analyser = StatusState(), sli.SLIAnalyser()
    for w in range(3):
        win = Window(w * 60 * S, (w + 1) * 60 * S)
        analyser.observe(win, [CallRecord("chat", f"svc{i % 20}", "openai", f"model-{i}", win.start_ns + S,
                                          win.start_ns + 2 * S, 1.0, error=i % 7 == 0) for i in range(2000)])
        state.export(build_request(analyser.close(win)))
    started = time.perf_counter()
    pages.overview(state.snapshot(), 1, 50, "")
    page_s = time.perf_counter() - started
    history = [WindowPoint(i * 60 * S, 10, 0.01 * (i % 5), 0.5 + i % 7, 0.01, 0.2) for i in range(180)]
    timings = []
    for size in (charts.SMALL, charts.LARGE):
        charts._draw(history, [], size)  # first draw loads fonts
        started = time.perf_counter()
        charts._draw(history, [(100 * 60 * S, None, "x")], size)
        timings.append(time.perf_counter() - started)
    return page_s, timings[0], timings[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    batches = records(1)
    spans = BATCHES * BATCH
    res: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for _ in range(args.rounds):
        res["a"].append(run(batches, False, False))
        res["b"].append(run(batches, True, False))
        res["c"].append(run(batches, True, True))
    a, b, c = (statistics.median(res[k]) for k in "abc")
    print(f"(a) grouping + SLI, no exemplars : {a * 1e9 / spans:7.0f} ns/call")
    print(f"(b) + exemplars                  : {b * 1e9 / spans:7.0f} ns/call  b/a {b / a:.3f}")
    print(f"(c) + example-trace candidates   : {c * 1e9 / spans:7.0f} ns/call  c/a {c / a:.3f}")
    page_s, small_s, large_s = status_page()
    print(f"status page, 2,000 series: page view {page_s * 1e3:.0f} ms; small chart {small_s * 1e3:.0f} ms; "
          f"large chart {large_s * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
