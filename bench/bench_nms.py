"""Benchmark: coupled NMS (numba + grid) vs a plain NumPy greedy implementation.

Run ``python bench/bench_nms.py``. Maps are rendered from the real City-scale ground truth
(see ``_maps.py``). Prints the first call (JIT compile or cache load), the median of repeated
warm calls, the NumPy baseline measured in the same run, the speed-up, and checks that both give
exactly the same vertices. Targets: <= 0.25 s warm and >= 20x faster than NumPy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from _maps import make_maps

from linegraph2road.nms import KEYPOINT, OVERPASS, ROAD, coupled_nms, mask_candidates


def _numpy_greedy(
    points: np.ndarray, scores: np.ndarray, radius: float, seeds: np.ndarray | None = None
) -> np.ndarray:
    """Greedy NMS, vectorised per kept point: O(n * kept)."""
    order = np.argsort(-scores.astype(np.float64), kind="stable")
    pts = points[order]
    r2 = radius * radius
    alive = np.ones(len(pts), dtype=bool)
    for s in seeds if seeds is not None else ():
        d = pts - s
        alive &= d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] >= r2
    kept = []
    for i in range(len(pts)):
        if not alive[i]:
            continue
        kept.append(order[i])
        d = pts[i + 1 :] - pts[i]
        alive[i + 1 :] &= d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] >= r2
    return np.asarray(kept, dtype=np.int64)


def numpy_coupled_nms(
    keypoint: np.ndarray,
    road: np.ndarray,
    overpass: np.ndarray,
    *,
    t_k: float = 0.248,
    t_r: float = 0.364,
    d_k: float = 8.0,
    d_r: float = 16.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm 1 in plain NumPy; same output layout as ``coupled_nms``."""
    kp, kp_s = mask_candidates(keypoint, threshold=t_k)
    ov, ov_s = mask_candidates(overpass, threshold=t_k)
    rd, rd_s = mask_candidates(road, threshold=t_r)
    kp = kp[_numpy_greedy(kp, kp_s, d_k)]
    ov = ov[_numpy_greedy(ov, ov_s, d_k)]
    dup = (kp[:, None, :] == ov[None, :, :]).all(-1).any(1)  # set union with the overpass set
    kp = kp[~dup]
    vk = np.concatenate([kp, ov])
    rd = rd[_numpy_greedy(rd, rd_s, d_r, seeds=vk)]
    kind = np.repeat(
        np.array([KEYPOINT, OVERPASS, ROAD], dtype=np.int8), [len(kp), len(ov), len(rd)]
    )
    return np.concatenate([vk, rd]), kind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="warm runs of coupled_nms (median)")
    ap.add_argument("--baseline-runs", type=int, default=1, help="runs of the NumPy baseline")
    args = ap.parse_args()

    t0 = time.perf_counter()
    keypoint, road, overpass, g = make_maps(seed=0)
    t_maps = time.perf_counter() - t0
    n_cand = [int((m > t).sum()) for m, t in ((keypoint, 0.248), (road, 0.364), (overpass, 0.248))]
    print(f"maps: 2048x2048 from City-scale gt.p ({g.num_nodes} nodes), built in {t_maps:.2f} s")
    print(
        f"candidates above threshold: keypoint {n_cand[0]}, road {n_cand[1]}, overpass {n_cand[2]}"
    )

    t0 = time.perf_counter()
    v = coupled_nms(keypoint, road, overpass)
    t_first = time.perf_counter() - t0
    warm = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        v = coupled_nms(keypoint, road, overpass)
        warm.append(time.perf_counter() - t0)
    t_warm = statistics.median(warm)

    base = []
    for _ in range(args.baseline_runs):
        t0 = time.perf_counter()
        ref_points, ref_kind = numpy_coupled_nms(keypoint, road, overpass)
        base.append(time.perf_counter() - t0)
    t_base = statistics.median(base)
    same = np.array_equal(v.points, ref_points) and np.array_equal(v.kind, ref_kind)
    counts = np.bincount(v.kind, minlength=3)

    print(f"vertices: {len(v)} (keypoint {counts[0]}, overpass {counts[1]}, road {counts[2]})")
    print(f"identical to NumPy baseline: {same}")
    print()
    print(f"| {'implementation':<40} | {'time (s)':>9} | {'vs NumPy':>9} |")
    print(f"|{'-' * 42}|{'-' * 11}|{'-' * 11}|")
    rows = [
        ("coupled_nms first call (JIT/cache load)", t_first),
        (f"coupled_nms warm (median of {args.repeat})", t_warm),
        (f"NumPy greedy baseline (median of {args.baseline_runs})", t_base),
    ]
    for name, t in rows:
        print(f"| {name:<40} | {t:>9.4f} | {t_base / t:>8.1f}x |")
    print()
    ok_time = t_warm <= 0.25
    ok_ratio = t_base / t_warm >= 20
    print(f"target <= 0.25 s warm: {'met' if ok_time else 'MISSED'}; ", end="")
    print(f"target >= 20x NumPy: {'met' if ok_ratio else 'MISSED'}")
    if not same:
        raise SystemExit("coupled_nms and the NumPy baseline disagree")


if __name__ == "__main__":
    main()
