"""Benchmark: training labels for a 2048 px City-scale tile, and a whole ``l2r prep dataset`` run.

Run ``python bench/bench_prep.py``.

(a) ``build_tile_labels`` on the real City-scale example tile (``fixtures/cityscale_example/gt.p``)
    after one warm-up call (numba JIT / cache load): median of ``--repeat`` calls. Target: <= 2 s.
(b) ``l2r prep dataset --format cityscale`` (the real command, run as a subprocess, so start-up
    and imports count) over ``--tiles`` generated City-scale tiles: each a 2048 x 2048 PNG plus a
    graph made from the fixture graph by a random rotation about the tile centre, a random shift
    and clipping to the tile (seeded, so every run benchmarks the same data). Timed with
    ``--workers 1`` (baseline) and ``--workers N``; reports tiles per second, the speed-up, and
    checks that both runs wrote byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from linegraph2road.data_prep.grid import TileGrid, clip_to_grid
from linegraph2road.data_prep.sources import load_roads
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.data_prep.tile import build_tile_labels
from linegraph2road.graph import RoadGraph
from linegraph2road.io import write_graph
from linegraph2road.io.raster import write_raster

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("L2R_FIXTURES", REPO.parent / "shared" / "fixtures"))
GT = FIXTURES / "cityscale_example" / "gt.p"
SIZE = 2048


def bench_labels(repeat: int) -> tuple[float, float, dict[str, int]]:
    """(first call, median warm call, label stats) for the example tile."""
    tile = clip_to_grid(load_roads(GT), TileGrid(SIZE, SIZE))
    t0 = time.perf_counter()
    build_tile_labels(tile, (SIZE, SIZE), seed=0)
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        labels = build_tile_labels(tile, (SIZE, SIZE), seed=0)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times), labels.stats()


def make_dataset(root: Path, n: int, seed: int = 0) -> None:
    """``n`` City-scale tiles from the fixture graph: random rotation, shift and crop."""
    rng = np.random.default_rng(seed)
    gt = load_roads(GT)
    nodes = gt.graph.nodes
    image = np.broadcast_to(
        np.linspace(30, 200, SIZE, dtype=np.uint8)[None, None, :], (3, SIZE, SIZE)
    )
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = rng.uniform(0, 2 * np.pi)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        shift = rng.uniform(-300, 300, size=2)
        moved = (nodes - SIZE / 2) @ rot.T + SIZE / 2 + shift
        g = TaggedGraph.untagged(gt.graph.replace(nodes=moved))
        tile = clip_to_grid(g, TileGrid(SIZE, SIZE)).graph
        # pickles store integer (row, col) pixel centres, like the real dataset
        uniq, inv = np.unique(np.floor(tile.nodes) + 0.5, axis=0, return_inverse=True)
        tile = RoadGraph.from_edges(uniq, inv.reshape(-1)[tile.edges]).drop_isolated_nodes()
        write_graph(tile, root / f"region_{i}_refine_gt_graph.p", "cityscale")
        write_raster(root / f"region_{i}_sat.png", np.ascontiguousarray(image))


def run_prep(root: Path, out: Path, workers: int) -> float:
    cmd = [sys.executable, "-m", "linegraph2road", "prep", "dataset", "--format", "cityscale"]
    cmd += ["--root", str(root), "-o", str(out), "--workers", str(workers)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(folder).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="warm calls for (a)")
    ap.add_argument("--tiles", type=int, default=20, help="generated tiles for (b)")
    ap.add_argument("--workers", type=int, default=2, help="workers for (b)")
    args = ap.parse_args()
    if not GT.is_file():
        sys.exit(f"fixture not found: {GT} (set L2R_FIXTURES)")

    first, warm, stats = bench_labels(args.repeat)
    print(f"(a) build_tile_labels, City-scale example tile {SIZE}x{SIZE}: {stats}")
    with tempfile.TemporaryDirectory(prefix="l2r-bench-prep-") as tmp:
        root = Path(tmp) / "cityscale"
        make_dataset(root, args.tiles)
        t1 = run_prep(root, Path(tmp) / "out1", 1)
        tn = run_prep(root, Path(tmp) / "outn", args.workers)
        same = digest(Path(tmp) / "out1") == digest(Path(tmp) / "outn")
    print(f"(b) l2r prep dataset over {args.tiles} generated tiles; identical outputs: {same}")
    print()
    print(f"{'benchmark':<44} {'time (s)':>9} {'tiles/s':>8} {'target / baseline':>22}")
    print("-" * 86)
    print(f"{'labels 2048 tile, first call (JIT/cache)':<44} {first:>9.3f} {'':>8} {'':>22}")
    ok = "ok" if warm <= 2.0 else "MISSED"
    print(
        f"{'labels 2048 tile, warm (median of ' + str(args.repeat) + ')':<44} {warm:>9.3f} "
        f"{1 / warm:>8.2f} {'<= 2 s: ' + ok:>22}"
    )
    print(f"{'prep dataset --workers 1':<44} {t1:>9.2f} {args.tiles / t1:>8.2f} {'baseline':>22}")
    label = f"prep dataset --workers {args.workers}"
    print(f"{label:<44} {tn:>9.2f} {args.tiles / tn:>8.2f} {f'{t1 / tn:.2f}x vs 1 worker':>22}")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cpus: {os.cpu_count()}, load average (1, 5, 15 min): {load}")


if __name__ == "__main__":
    main()
