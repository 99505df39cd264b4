"""Algorithm 4: gap properties, path decomposition, points on the ground truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.data_prep.interpolate import (
    algorithm4_positions,
    graph_paths,
    interpolate_paths,
)
from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.0, 600.0),
    st.one_of(st.integers(1, 32).map(float), st.floats(1.0, 40.0)),
    st.integers(0, 2**32 - 1),
)
def test_gaps_are_in_d_r_to_2d_r_minus_1_except_the_last(
    length: float, d_r: float, seed: int
) -> None:
    pos = algorithm4_positions(length, d_r=d_r, rng=np.random.default_rng(seed))
    if length <= 2 * d_r - 1:
        assert len(pos) == 0  # nothing fits: the only gap is the whole line
        return
    assert len(pos) >= 1
    gaps = np.diff(np.concatenate([[0.0], pos]))
    tol = 1e-9 * max(length, 1.0)  # positions are running sums of the gaps
    assert (gaps >= d_r - tol).all() and (gaps <= 2 * d_r - 1 + tol).all()
    # integer draws: every gap is d_r plus a whole number of pixels
    frac = (gaps - d_r) % 1.0
    assert np.minimum(frac, 1.0 - frac).max() < 1e-6
    last = length - pos[-1]
    assert d_r - 1 < last <= 2 * d_r - 1 + tol  # may be up to 1 px shorter than d_r


def test_last_gap_can_be_shorter_than_d_r() -> None:
    # L = 47.5, d_r = 16: after a first gap of 16 the loop test 16 + 31 < 47.5 passes, the only
    # accepted draw is u = 16 (16 + 16 + 15 < 47.5), and 47.5 - 32 = 15.5 < d_r remains
    runs = [algorithm4_positions(47.5, d_r=16.0, rng=np.random.default_rng(s)) for s in range(64)]
    short = [p for p in runs if p[0] == 16.0]
    assert short and all(p.tolist() == [16.0, 32.0] for p in short)
    assert all(len(p) == 1 and 17.0 <= p[0] <= 31.0 for p in runs if p[0] != 16.0)


def test_all_gap_values_are_drawn() -> None:
    gaps = set()
    for s in range(300):
        pos = algorithm4_positions(1000.0, d_r=16.0, rng=np.random.default_rng(s))
        gaps.update(np.diff(np.concatenate([[0.0], pos]))[:-1].tolist())
    assert gaps == {float(u) for u in range(16, 32)}


def test_bad_d_r_raises() -> None:
    with pytest.raises(GraphError, match="d_r"):
        algorithm4_positions(100.0, d_r=0.5, rng=np.random.default_rng(0))


def _loop_and_tail() -> RoadGraph:
    # a square loop (no anchor on it) plus a separate L-shaped path 5-6-7
    nodes = np.array(
        [
            [10.0, 10.0],
            [90.0, 10.0],
            [90.0, 90.0],
            [10.0, 90.0],
            [50.0, 50.0],
            [200, 10],
            [260, 10],
            [260, 80],
        ]
    )
    edges = np.array([[0, 1], [1, 2], [2, 3], [0, 3], [5, 6], [6, 7]])
    return RoadGraph(nodes, edges)


def test_graph_paths_cover_every_edge_once_and_open_anchor_free_loops() -> None:
    g = _loop_and_tail()
    paths, extra = graph_paths(g, [4, 5, 7])
    assert extra.tolist() == [0]
    seen = sorted(
        tuple(sorted(e)) for p in paths for e in zip(p[:-1].tolist(), p[1:].tolist(), strict=True)
    )
    assert seen == sorted(map(tuple, g.edges.tolist()))
    assert [p.tolist() for p in paths] == [[5, 6, 7], [0, 1, 2, 3, 0]]


def test_graph_paths_need_all_non_degree_2_nodes_as_anchors() -> None:
    with pytest.raises(GraphError, match="degree != 2"):
        graph_paths(_loop_and_tail(), [5])


def test_points_lie_on_their_path_at_their_arc_position() -> None:
    g = _loop_and_tail()
    res = interpolate_paths(g, [4, 5, 7], d_r=16.0, rng=np.random.default_rng(7))
    assert len(res.points) > 0
    np.testing.assert_allclose(res.path_length, [130.0, 320.0])
    for xy, k, s in zip(res.points, res.path, res.arc, strict=True):
        poly = g.nodes[res.paths[k]]
        seg = np.diff(poly, axis=0)
        cum = np.concatenate([[0.0], np.cumsum(np.hypot(*seg.T))])
        i = min(int(np.searchsorted(cum, s, side="right")) - 1, len(seg) - 1)
        want = poly[i] + seg[i] * (s - cum[i]) / math.hypot(*seg[i])
        np.testing.assert_allclose(xy, want, atol=1e-9)
    again = interpolate_paths(g, [4, 5, 7], d_r=16.0, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(again.points, res.points)
    np.testing.assert_array_equal(g.nodes, _loop_and_tail().nodes)  # not modified
