"""Benchmark: candidate graph (KD-tree) + line graph (NumPy) vs O(n^2) NumPy and PyG's LineGraph.

Run ``python bench/bench_candidates.py``. Vertices come from ``coupled_nms`` on the maps rendered
from the real City-scale ground truth (``_maps.py``). Prints times (median of repeated runs),
speed-ups against baselines measured in the same run, the vertex / candidate-edge / line-graph
sizes, and checks that both sides agree exactly. Target: <= 0.5 s for both steps together.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from _maps import make_maps

from linegraph2road.candidates import candidate_edges
from linegraph2road.line_graph import line_graph_edge_index
from linegraph2road.nms import coupled_nms

with warnings.catch_warnings():
    # torch_geometric 2.8 calls the deprecated torch.jit.script while importing.
    warnings.simplefilter("ignore", DeprecationWarning)
    from torch_geometric.data import Data
    from torch_geometric.transforms import LineGraph
    from torch_geometric.utils import to_undirected


def numpy_candidate_edges(points: np.ndarray, d_nei: float) -> np.ndarray:
    """All pairs within d_nei from the full O(n^2) distance matrix."""
    diff = points[:, None, :] - points[None, :, :]
    d2 = np.einsum("ijk,ijk->ij", diff, diff)
    i, j = np.nonzero(np.triu(d2 <= d_nei * d_nei, k=1))
    return np.stack([i, j], axis=1).astype(np.int64)


def pyg_line_graph(edges: np.ndarray, num_nodes: int) -> torch.Tensor:
    ei = to_undirected(torch.from_numpy(edges.T.copy()), num_nodes=num_nodes)
    out = LineGraph()(Data(edge_index=ei, num_nodes=num_nodes)).edge_index
    assert out is not None
    return out


def _time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="runs of our code (median)")
    ap.add_argument("--baseline-repeat", type=int, default=2, help="runs of the baselines")
    ap.add_argument("--d-nei", type=float, default=64.0)
    args = ap.parse_args()

    keypoint, road, overpass, _ = make_maps(seed=0)
    pts = coupled_nms(keypoint, road, overpass).points
    n = len(pts)

    t_cand, edges = _time(lambda: candidate_edges(pts, d_nei=args.d_nei), args.repeat)
    t_lg, ei = _time(lambda: line_graph_edge_index(edges, num_nodes=n), args.repeat)
    t_cand_np, edges_np = _time(
        lambda: numpy_candidate_edges(pts, args.d_nei), args.baseline_repeat
    )
    t_lg_pyg, ei_pyg = _time(lambda: pyg_line_graph(edges, n), args.baseline_repeat)

    same_edges = np.array_equal(edges, edges_np)
    same_lg = torch.equal(ei, ei_pyg)
    print(f"vertices: {n}   candidate edges: {len(edges)}   line-graph edges: {ei.shape[1]}")
    print(f"identical to baselines: candidates {same_edges}, line graph {same_lg}")
    print()
    print(f"| {'step':<13} | {'ours (s)':>9} | {'baseline':<24} | {'base (s)':>9} | {'ratio':>7} |")
    print(f"|{'-' * 15}|{'-' * 11}|{'-' * 26}|{'-' * 11}|{'-' * 9}|")
    for step, ours, base_name, base in (
        ("candidates", t_cand, "NumPy O(n^2) dist matrix", t_cand_np),
        ("line graph", t_lg, "PyG LineGraph", t_lg_pyg),
        ("total", t_cand + t_lg, "both", t_cand_np + t_lg_pyg),
    ):
        print(
            f"| {step:<13} | {ours:>9.4f} | {base_name:<24} | {base:>9.4f} | {base / ours:>6.1f}x |"
        )
    print()
    total = t_cand + t_lg
    print(f"target <= 0.5 s total: {'met' if total <= 0.5 else 'MISSED'} ({total:.3f} s)")
    if not (same_edges and same_lg):
        raise SystemExit("results differ from the baselines")


if __name__ == "__main__":
    main()
