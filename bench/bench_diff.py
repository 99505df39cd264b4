"""Benchmark: ``l2r diff`` on the real OSM fixture, on a 2048 m x 2048 m tile, and as it grows.

Run ``python bench/bench_diff.py`` (``--quick`` skips the largest growth step). Parts:

1. **Accuracy** on the fixture with known changes (``tests/mapdiff/scenario.py``: 9 removed ways,
   4 fake roads): precision and recall (by length) of every class, for the exact prediction,
   one jittered node by node by 1-3 m, and one shifted by 3 m.
2. **Time of the whole command** (``run_diff``: read both files, compare, write GeoPackage, JSON
   and JOSM file): the whole fixture (~2.2 km x 2.2 km, 781 edges), and a 2048 m x 2048 m
   GeoTIFF tile at 1 m/px over it (``--raster``: the footprint, plus reading the raster and
   drawing the overlay PNG).
3. **Growth**: the fixture tiled k x k times (k = 1, 2, 4, 8: up to 64 copies, 50 k edges, 2,860
   km of road) for both graphs, timing :func:`diff_graphs`; the ratios against k = 1 and the
   log-log slope say how time grows with the number of edges. Baseline in the same run: the
   matching stage done with shapely's STRtree (``dwithin`` of every sample against the other
   graph's segments, the usual GIS way, without the angle test) against the shared numba kernel.

The first call of each part compiles or loads numba's cache and is reported apart; the others are
medians of ``--repeat`` warm calls. The machine is shared: ``uptime`` is printed.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scenario lives with the tests

from linegraph2road.data_prep.tagged import TaggedGraph  # noqa: E402
from linegraph2road.georef import WGS84, Georeference, transform_points  # noqa: E402
from linegraph2road.graph import RoadGraph  # noqa: E402
from linegraph2road.io import write_graph  # noqa: E402
from linegraph2road.io.raster import write_raster  # noqa: E402
from linegraph2road.mapdiff import DiffOptions, diff_graphs  # noqa: E402
from linegraph2road.metrics.matching import match_samples, sample_segments  # noqa: E402
from linegraph2road.pipelines.diff import run_diff  # noqa: E402
from tests.mapdiff.scenario import UTM, build_scenario, jittered, shifted  # noqa: E402

FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(first call s, median of ``repeat`` warm calls s, last result)."""
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t)
    return first, statistics.median(runs), out


def accuracy(sc: Any) -> None:
    print("\n## 1. change detection on the OSM fixture (precision / recall by length)")
    print(f"{'prediction':<22}{'class':<18}{'precision':>10}{'recall':>9}{'true km':>10}")
    cases = {
        "exact": sc.pred,
        "jitter 1-3 m / node": jittered(sc.pred, low=1.0, high=3.0, seed=1),
        "shifted 3 m": shifted(sc.pred, dx=2.1213, dy=2.1213),
    }
    for name, pred in cases.items():
        d = diff_graphs(pred, sc.ref)
        for kind, s in d.scores(sc.pred_removed, sc.ref_fake).items():
            print(
                f"{name:<22}{kind:<18}{s['precision']:>10.4f}{s['recall']:>9.4f}"
                f"{s['true_km']:>10.3f}"
            )
        name = ""


def command_times(sc: Any, work: Path, repeat: int) -> None:
    print("\n## 2. time of the whole command (read, compare, write every output)")
    pred = work / "pred.geojson"
    write_graph(sc.pred, pred)
    out = work / "out" / "changes.gpkg"
    first, warm, (d, _) = timed(lambda: run_diff(pred, sc.ref_path, out), repeat)
    print(
        f"whole fixture        {d.summary()['area_km2']:.2f} km2, {sc.pred.num_edges} + "
        f"{sc.ref.graph.num_edges} edges: first {first:.2f} s, warm {warm:.3f} s"
    )
    # a 2048 m x 2048 m tile at 1 m/px over the fixture's centre
    xy = transform_points(sc.pred.nodes, WGS84, UTM)
    centre = (xy.min(axis=0) + xy.max(axis=0)) / 2.0
    x0, y1 = math.floor(centre[0] - 1024), math.ceil(centre[1] + 1024)
    grid = Georeference(UTM, Affine(1.0, 0.0, x0, 0.0, -1.0, y1))
    tif = work / "tile.tif"
    write_raster(tif, np.zeros((3, 2048, 2048), np.uint8), georef=grid)
    first, warm, (d, _) = timed(lambda: run_diff(pred, sc.ref_path, out, raster=tif), repeat)
    s = d.summary()
    print(
        f"2048 m x 2048 m tile {s['area_km2']:.2f} km2, {s['prediction_km']:.1f} + "
        f"{s['reference_km']:.1f} km of road (with the overlay PNG): first {first:.2f} s, "
        f"warm {warm:.3f} s"
    )


def tiled(pred: RoadGraph, ref: TaggedGraph, k: int) -> tuple[RoadGraph, RoadGraph]:
    """Both graphs repeated k x k times side by side (UTM metres, 1 m/px grid)."""
    grid = Georeference(UTM, Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0))

    def copies(g: RoadGraph, size: np.ndarray) -> RoadGraph:
        xy = transform_points(g.nodes, WGS84, UTM)
        nodes, edges = [], []
        for i in range(k):
            for j in range(k):
                moved = xy + size * np.array([i, j])
                nodes.append(moved * np.array([1.0, -1.0]))
                edges.append(g.edges + len(xy) * (i * k + j))
        return RoadGraph(np.concatenate(nodes), np.concatenate(edges), None, grid)

    lo, hi = transform_points(np.array(ref.graph.meta["extent"]).reshape(2, 2), WGS84, UTM)
    size = hi - lo
    big_ref = copies(ref.graph, size)
    box = shapely.box(lo[0], lo[1], lo[0] + k * size[0], lo[1] + k * size[1])
    ext = shapely.bounds(shapely.transform(shapely.segmentize(box, 100.0), _to_lonlat))
    return copies(pred, size), big_ref.replace(meta={"extent": tuple(ext.tolist())})


def _to_lonlat(xy: np.ndarray) -> np.ndarray:
    return transform_points(xy, UTM, WGS84)


def growth(sc: Any, repeat: int, ks: list[int]) -> None:
    print("\n## 3. growth with the number of edges (diff_graphs, both graphs tiled k x k)")
    print(
        f"{'k':>3}{'edges':>9}{'km':>9}{'time s':>9}{'x k=1':>8}{'edges x':>9}"
        f"{'kernel s':>10}{'STRtree s':>11}{'STRtree/kernel':>16}"
    )
    base = None
    pts: list[tuple[float, float]] = []
    opts = DiffOptions()
    for k in ks:
        pred, ref = tiled(sc.pred, sc.ref, k)
        _, warm, d = timed(lambda p=pred, r=ref: diff_graphs(p, r), repeat if k < 8 else 1)
        edges = pred.num_edges + ref.num_edges
        # the matching stage alone: shared kernel vs shapely STRtree dwithin
        a = sample_segments(d.pred.start, d.pred.end, step=opts.step)
        b = sample_segments(d.ref.start, d.ref.end, step=opts.step)
        _, t_kernel, _ = timed(lambda a=a, b=b: match_samples(a, b, distance=8.0), 1)
        lines = d.ref.lines()
        tree = shapely.STRtree(lines)
        t = time.perf_counter()
        hit = tree.query(shapely.points(a.xy), predicate="dwithin", distance=8.0)
        t_tree = time.perf_counter() - t
        del hit
        if base is None:
            base = (warm, edges)
        pts.append((math.log(edges), math.log(warm)))
        print(
            f"{k:>3}{edges:>9}{d.km('matched') + d.km('missing_from_ref'):>9.0f}{warm:>9.3f}"
            f"{warm / base[0]:>8.1f}{edges / base[1]:>9.0f}{t_kernel:>10.3f}{t_tree:>11.3f}"
            f"{t_tree / t_kernel:>16.1f}"
        )
    if len(pts) > 1:
        x, y = np.array(pts).T
        slope = float(np.polyfit(x, y, 1)[0])
        print(f"log-log slope of time against edges: {slope:.2f} (1 = linear)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="warm runs per timing (median)")
    ap.add_argument("--quick", action="store_true", help="growth up to k = 4 only")
    args = ap.parse_args()
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    print("(shared machine: times vary with the other users' load)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sc = build_scenario(FIXTURES, work)
        accuracy(sc)
        command_times(sc, work, args.repeat)
        growth(sc, args.repeat, [1, 2, 4] if args.quick else [1, 2, 4, 8])
    print("load:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
