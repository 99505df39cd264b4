"""Benchmark: native evaluators on the real City-scale example pair, against the references.

Run ``python bench/bench_metrics.py``. For every metric: the first call (numba JIT compile, or
loading the on-disk cache) is reported apart, then the median of warm calls, next to the wall time
of the reference implementation on the same pair (``fixtures/README.md``, 2-core machine) and the
speed-up. Target for TOPO: <= 9 s per 2048 px tile, >= 20x faster than the reference (180 s).

Each metric is one ``bench_*`` function returning a :class:`Row`; add a function and list it in
``BENCHMARKS`` to time another metric.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph
from linegraph2road.metrics.apls import apls_cosmiq, apls_sat2graph
from linegraph2road.metrics.topo import topo

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))
PAIR = FIXTURES / "cityscale_example"
T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One line of the final table (times in seconds)."""

    metric: str
    value: str
    first_call: float
    warm: float
    reference: float

    @property
    def speedup(self) -> float:
        return self.reference / self.warm


def _time(fn: Callable[[], T], repeat: int) -> tuple[float, float, T]:
    """(first call, median of ``repeat`` warm calls, last result)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        warm.append(time.perf_counter() - t0)
    return first, statistics.median(warm), out


def bench_topo(gt: RoadGraph, prop: RoadGraph, repeat: int) -> Row:
    """TOPO (Sat2Graph): reference P 0.8734, R 0.8581, F1 0.8657 in 180 s."""
    first, warm, r = _time(lambda: topo(gt, prop), repeat)
    value = f"P {r.precision:.4f} R {r.recall:.4f} F1 {r.f1:.4f}"
    return Row("TOPO (Sat2Graph)", value, first, warm, 180.0)


def bench_apls_sat2graph(gt: RoadGraph, prop: RoadGraph, repeat: int) -> Row:
    """APLS (Sat2Graph Go, 2048 tile settings): reference ~0.8155 (0.853 / 0.778) in 130 s."""
    first, warm, r = _time(lambda: apls_sat2graph(gt, prop), repeat)
    value = f"{r.score:.4f} ({r.gt_to_prop:.4f} / {r.prop_to_gt:.4f})"
    return Row("APLS (Sat2Graph)", value, first, warm, 130.0)


def bench_apls_cosmiq(gt: RoadGraph, prop: RoadGraph, repeat: int) -> Row:
    """APLS (CosmiQ apls.py, 1000 sampled control points): reference ~0.741 in 76 s."""
    first, warm, r = _time(lambda: apls_cosmiq(gt, prop), repeat)
    value = f"{r.score:.4f} ({r.gt_to_prop:.4f} / {r.prop_to_gt:.4f})"
    return Row("APLS (CosmiQ)", value, first, warm, 76.0)


BENCHMARKS: list[Callable[[RoadGraph, RoadGraph, int], Row]] = [
    bench_topo,
    bench_apls_sat2graph,
    bench_apls_cosmiq,
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="warm runs per metric (median)")
    args = ap.parse_args()
    gt = read_graph(PAIR / "gt.p")
    prop = read_graph(PAIR / "prop.p")
    print(f"pair: {PAIR} (gt {gt.num_nodes} nodes, prop {prop.num_nodes} nodes)")
    rows = [bench(gt, prop, args.repeat) for bench in BENCHMARKS]
    head = (
        f"{'metric':<22} {'value':<30} {'first call':>10} {'warm':>8} {'reference':>10} "
        f"{'speed-up':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.metric:<22} {r.value:<30} {r.first_call:>9.2f}s {r.warm:>7.2f}s "
            f"{r.reference:>9.0f}s {r.speedup:>8.0f}x"
        )


if __name__ == "__main__":
    main()
