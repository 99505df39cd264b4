"""Chunked extraction: the plan and the seam reconciliation (equality with one process on the
Vegas raster: tests/cli/test_dask.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from linegraph2road.errors import ParameterError
from linegraph2road.graph import RoadGraph
from linegraph2road.inference.chunks import ChunkResult, merge_chunks, plan_chunks
from linegraph2road.inference.extract import window_layout
from linegraph2road.nms import KEYPOINT, ROAD


@pytest.mark.parametrize(
    ("shape", "window", "chunk", "d_nei"),
    [((176, 176), 64, 64, 24.0), ((700, 333), 64, 128, 64.0), ((2048, 2048), 512, 600, 64.0),
     ((40, 300), 64, 64, 64.0), ((5000, 9000), 512, 2048, 64.0)],
)  # fmt: skip
def test_every_window_is_scored_once_by_a_chunk_that_sees_its_neighbourhood(
    shape: tuple[int, int], window: int, chunk: int, d_nei: float
) -> None:
    plan = plan_chunks(shape, window=window, chunk=chunk, d_nei=d_nei)
    rows, cols = window_layout(shape, window=window, n_windows=None, d_nei=d_nei)
    owned = [(r, c) for ch in plan.chunks for r in ch.own_rows for c in ch.own_cols]
    assert sorted(owned) == sorted((r, c) for r in rows for c in cols)  # once each
    for ch in plan.chunks:
        r0, r1, c0, c1 = ch.region
        assert 0 <= r0 < r1 <= shape[0] and 0 <= c0 < c1 <= shape[1]
        lo, hi = min(ch.own_rows) - plan.margin, max(ch.own_rows) + window + plan.margin
        # every window touching the owned span widened by the margin is run by the chunk
        assert {r for r in rows if r < hi and r + window > lo} == set(ch.rows)
        assert r1 - r0 <= (ch.core[1] - ch.core[0]) + 2 * (window + window // 2 + plan.margin)
    assert plan.computed >= plan.windows


def test_a_chunk_smaller_than_a_window_is_refused() -> None:
    with pytest.raises(ParameterError, match="smaller than the model's 512 px window"):
        plan_chunks((4096, 4096), window=512, chunk=256)


def _chunk(keys: list[int], pts: list[tuple[float, float]], kinds: list[int], core: list[bool],
           edges: list[tuple[int, int]], probs: list[float]) -> ChunkResult:  # fmt: skip
    return ChunkResult(
        np.array(keys, np.int64), np.array(pts, np.float64), np.array(kinds, np.int8),
        np.full(len(keys), 0.9, np.float32), np.array(core), np.sort(np.array(edges), axis=1),
        np.array(probs, np.float64), np.ones(len(edges), np.int64),
    )  # fmt: skip


def test_seam_vertices_seen_twice_are_reconciled_without_stubs_or_duplicates() -> None:
    # chunk A (left) saw a road vertex at x=60.5 in its halo; chunk B (right, owner) at x=63.5
    a = _chunk([1, 2, 3], [(20.5, 10.5), (60.5, 10.5), (60.5, 40.5)], [ROAD, ROAD, KEYPOINT],
               [True, False, False], [(1, 2), (2, 3)], [0.8, 0.7])  # fmt: skip
    b = _chunk([4, 5, 3], [(63.5, 10.5), (100.5, 10.5), (60.5, 40.5)], [ROAD, ROAD, KEYPOINT],
               [True, True, True], [(4, 5), (3, 4)], [0.9, 0.5])  # fmt: skip
    graph, stats = merge_chunks([a, b], t_topo=0.55, d_r=16.0, d_k=8.0)
    assert stats["reconciled"] == 1 and stats["vertices"] == 5
    pts = {tuple(p) for p in graph.nodes.tolist()}
    assert (60.5, 10.5) not in pts and (63.5, 10.5) in pts  # the owner's version is kept
    segs = {tuple(sorted(map(tuple, graph.nodes[e].tolist()))) for e in graph.edges}
    seam = ((60.5, 40.5), (63.5, 10.5))
    assert segs == {((20.5, 10.5), (63.5, 10.5)), ((63.5, 10.5), (100.5, 10.5)), seam}
    ends = map(tuple, graph.nodes[graph.edges].reshape(-1, 4).tolist())
    prob = dict(zip(ends, graph.edge_prob, strict=True))
    assert prob[(60.5, 40.5, 63.5, 10.5)] == pytest.approx(0.6)  # both scores pooled: (0.7+0.5)/2
    # two keypoints of different masks close together are not one vertex
    c = _chunk([8, 9], [(5.5, 5.5), (7.5, 5.5)], [KEYPOINT, KEYPOINT + 1], [True, True],
               [(8, 9)], [0.9])  # fmt: skip
    assert merge_chunks([c], t_topo=0.5)[1]["reconciled"] == 0


def test_sam_road_layout_in_chunks_equals_one_process(fixtures_dir: Path) -> None:
    """The chunked path keeps the sam-road layout (16 x 16-style grid with its uncovered margin):
    the merged graph is the single-process graph, edge for edge."""
    import torch

    from linegraph2road.inference import RasterSource, extract_chunk, extract_graph
    from linegraph2road.model import build_model

    vegas = fixtures_dir / "spacenet_vegas/RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    if not vegas.is_file():
        pytest.skip(f"fixture missing: {vegas}")
    torch.manual_seed(0)
    model = build_model("tiny", window_size=64)
    params = {"t_k": 0.505, "t_r": 0.495, "d_k": 8.0, "d_r": 16.0, "d_nei": 24.0}
    with RasterSource(vegas, gsd=1.5) as source:
        whole = extract_graph(model, source, layout="sam-road", n_windows=6, **params).graph
        plan = plan_chunks(
            source.shape, window=64, chunk=128, n_windows=6, layout="sam-road",
            d_nei=24.0, d_r=16.0, d_k=8.0,
        )  # fmt: skip
        assert len(plan.chunks) >= 4 and plan.rows[0] == 64  # the margin is kept
        parts = [extract_chunk(model, source, c, **params) for c in plan.chunks]
    merged, _ = merge_chunks(parts, t_topo=0.5, d_r=16.0, d_k=8.0)
    assert whole.num_edges > 10

    def segments(g: RoadGraph) -> dict[tuple[tuple[float, ...], ...], float]:
        assert g.edge_prob is not None
        ends = g.nodes[g.edges].round(6).tolist()
        pairs = zip(ends, g.edge_prob.tolist(), strict=True)
        return {tuple(sorted(map(tuple, e))): p for e, p in pairs}

    a, b = segments(whole), segments(merged)
    assert a.keys() == b.keys()
    assert max(abs(a[k] - b[k]) for k in a) < 1e-6
