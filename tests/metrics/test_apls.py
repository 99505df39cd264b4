"""APLS, both variants: hand-built cases with exact values, properties, errors.

Parity with the reference implementations on real data is in ``test_apls_parity.py``.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from linegraph2road.graph import RoadGraph
from linegraph2road.metrics.apls import (
    AplsParameterError,
    AplsResult,
    apls,
    apls_cosmiq,
    apls_sat2graph,
)

# Hand cases sit well inside the tile: every node is in the Sat2Graph region.
REGION = {"region_size": 1000.0, "margin": 1.0, "reference_cover": False}


def polyline(points: list[tuple[float, float]]) -> RoadGraph:
    """A path graph through ``points`` ((x, y) pixels = metres)."""
    n = len(points)
    return RoadGraph(
        np.array(points, dtype=float), np.column_stack([np.arange(n - 1), np.arange(1, n)])
    )


def dotted(x0: float, x1: float, y: float = 100.0, step: float = 2.0) -> list[tuple[float, float]]:
    return [(float(x), y) for x in np.arange(x0, x1 + step / 2, step)]


def union(*graphs: RoadGraph) -> RoadGraph:
    nodes, edges, off = [], [], 0
    for g in graphs:
        nodes.append(g.nodes)
        edges.append(g.edges + off)
        off += g.num_nodes
    return RoadGraph.from_edges(np.concatenate(nodes), np.concatenate(edges))


# -- Sat2Graph variant --------------------------------------------------------------------------
# Roads drawn with a node every 2 m are not densified further, so control points sit exactly on
# nodes of both graphs and every path length is a whole number of 2 m hops.


def test_sat2graph_gap() -> None:
    gt = polyline(dotted(10, 210))
    pred = union(polyline(dotted(10, 106)), polyline(dotted(114, 210)))
    r = apls_sat2graph(gt, pred, min_path_length=50.0, **REGION)
    # GT control points x = 10, 50, 90, 130, 170, 210 (chain of 101 nodes: 4 inside + 2 ends).
    # Ten pairs are longer than 50 m; eight cross the gap (cost 1), two do not (cost 0).
    assert r.n_control_gt == 6 and r.n_snapped_gt == 6
    assert r.gt_to_prop == pytest.approx(1 - 8 / 10, abs=1e-12)
    # Proposal control points x = 10, 58, 106 | 114, 162, 210. The pairs (10, 106) and
    # (114, 210) are 96 m long; snapping is one-to-one with 4 hops of cover, so one of 106 / 114
    # lands 2 m further out and its path is 94 m: mean cost (2 / 96) / 2.
    assert r.n_pairs_prop_to_gt == 2
    assert r.prop_to_gt == pytest.approx(1 - 1 / 96, abs=1e-12)
    assert r.score == pytest.approx((0.2 + 1 - 1 / 96) / 2, abs=1e-12)


def test_sat2graph_spur_missing_from_proposal() -> None:
    line = polyline(dotted(10, 210))
    spur = polyline([(110.0, float(y)) for y in np.arange(100, 38, -2)])
    gt = RoadGraph.from_edges(
        np.concatenate([line.nodes, spur.nodes[1:]]),
        np.concatenate(
            [line.edges, [[50, 101]], np.column_stack([np.arange(101, 130), np.arange(102, 131)])]
        ),
    )
    r = apls_sat2graph(gt, line, **REGION)
    # GT control points: x = 10, 44, 78, 110 (junction), 144, 178, 210 and the spur's end,
    # which is 60 m from the proposal: its 7 pairs cost 1. Of the 21 others, 6 are longer than
    # 100 m and match exactly.
    assert (r.n_control_gt, r.n_snapped_gt) == (8, 7)
    assert r.gt_to_prop == pytest.approx(6 / 13, abs=1e-12)
    assert r.prop_to_gt == 1.0
    assert r.score == pytest.approx((6 / 13 + 1) / 2, abs=1e-12)


@pytest.mark.parametrize(("shift", "expected"), [(3.0, 1.0), (12.0, 0.0)])
def test_sat2graph_shifted_copy(shift: float, expected: float) -> None:
    gt = polyline(dotted(10, 210))
    pred = polyline(dotted(10, 210, y=100.0 + shift))
    r = apls_sat2graph(gt, pred, **REGION)
    assert (r.gt_to_prop, r.prop_to_gt, r.score) == (expected, expected, expected)


def test_sat2graph_small_tile_defaults_and_overrides() -> None:
    gt = polyline(dotted(10, 210))
    r = apls_sat2graph(gt, gt, small_tiles=True, region_size=1000.0)
    assert r.params["control_interval"] == 30.0
    assert r.params["min_path_length"] == 30.0
    assert r.params["margin"] == 30.0
    assert r.params["region_size"] == 1000.0
    assert r.score == 1.0


def test_sat2graph_region_excludes_control_points() -> None:
    gt = polyline(dotted(10, 210))
    r = apls_sat2graph(gt, gt, region_size=2048.0, margin=300.0)
    assert r.n_control_gt == 0
    assert math.isnan(r.gt_to_prop) and math.isnan(r.score)


# -- CosmiQ variant -----------------------------------------------------------------------------


def test_cosmiq_gap() -> None:
    gt = polyline([(10.0, 20.0), (110.0, 20.0)])
    pred = union(polyline([(10.0, 20.0), (58.0, 20.0)]), polyline([(62.0, 20.0), (110.0, 20.0)]))
    r = apls_cosmiq(gt, pred)
    # GT control points: both ends and the midpoint at x = 60, which lands 2 m away on the node
    # at x = 58. Ordered pairs: 10-110 and 110-10 unreachable (1), 10-60 and 60-10 cost
    # |50 - 48| / 50, 110-60 and 60-110 unreachable (1): mean 4.08 / 6.
    assert r.params["mode"] == "midpoints"
    assert r.n_control_gt == 3 and r.n_pairs_gt_to_prop == 6
    assert r.gt_to_prop == pytest.approx(1 - 4.08 / 6, abs=1e-12)
    # Proposal: 4 nodes and a midpoint in each 48 m piece, all on the GT line: 12 exact pairs.
    assert r.n_control_prop == 6 and r.n_pairs_prop_to_gt == 12
    assert r.prop_to_gt == pytest.approx(1.0, abs=1e-12)
    s = 1 - 4.08 / 6
    assert r.score == pytest.approx(2 * s / (s + 1), abs=1e-12)


def test_cosmiq_spur_in_proposal() -> None:
    gt = polyline([(10.0, 50.0), (110.0, 50.0)])
    pred = RoadGraph(
        np.array([[10.0, 50.0], [60.0, 50.0], [110.0, 50.0], [60.0, 80.0]]),
        np.array([[0, 1], [1, 2], [1, 3]]),
    )
    r = apls_cosmiq(gt, pred)
    # GT control points (ends + midpoint at 60) all land on proposal nodes: exact paths.
    assert r.gt_to_prop == pytest.approx(1.0, abs=1e-12)
    # Proposal control points: 4 nodes + midpoints at 35 and 85 (the 30 m spur gets none).
    # The spur's end is 30 m from the GT: its 5 pairs as start and 5 as end cost 1, the other
    # 20 ordered pairs are exact: 1 - 10 / 30.
    assert (r.n_control_prop, r.n_snapped_prop, r.n_pairs_prop_to_gt) == (6, 5, 30)
    assert r.prop_to_gt == pytest.approx(2 / 3, abs=1e-12)
    assert r.score == pytest.approx(0.8, abs=1e-12)


@pytest.mark.parametrize(("shift", "expected"), [(3.0, 1.0), (5.0, 0.0)])
def test_cosmiq_shifted_copy(shift: float, expected: float) -> None:
    gt = polyline([(10.0, 50.0), (110.0, 50.0)])
    pred = polyline([(10.0, 50.0 + shift), (110.0, 50.0 + shift)])
    r = apls_cosmiq(gt, pred)
    assert (r.gt_to_prop, r.prop_to_gt) == pytest.approx((expected, expected), abs=1e-12)
    assert r.score == pytest.approx(expected, abs=1e-12)


def test_cosmiq_last_control_point_on_a_node_wins() -> None:
    # Both GT ends lie within 4 m of the proposal's only node pair: the two GT points near the
    # proposal's end node share it, and only the later one keeps it.
    gt = RoadGraph(np.array([[10.0, 10.0], [60.0, 12.0], [60.0, 8.0]]), np.array([[0, 1], [0, 2]]))
    pred = polyline([(10.0, 10.0), (60.0, 10.0)])
    r = apls_cosmiq(gt, pred, midpoint_spacing=1000.0)
    assert r.n_control_gt == 3 and r.n_snapped_gt == 2


def test_cosmiq_sampled_mode_is_seeded() -> None:
    gt = polyline(dotted(10, 1210, step=2.0))  # 601 nodes: sampled mode
    a = apls_cosmiq(gt, gt, seed=3, max_control_points=50)
    b = apls_cosmiq(gt, gt, seed=3, max_control_points=50)
    assert a.params["mode"] == "sampled" and a.n_control_gt == 50
    assert a == b and a.score == 1.0


# -- both variants ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["sat2graph", "cosmiq"])
def test_against_empty_graph_is_zero(variant: str) -> None:
    g = polyline(dotted(10, 210))
    for a, b in ((g, RoadGraph.empty()), (RoadGraph.empty(), g)):
        r = apls(a, b, variant=variant)
        assert (r.score, r.gt_to_prop, r.prop_to_gt) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("variant", ["sat2graph", "cosmiq"])
def test_inputs_untouched_and_result_serialisable(variant: str) -> None:
    gt = polyline(dotted(150, 450, y=300.0))
    pred = polyline(dotted(150, 446, y=303.0))
    before = (gt.nodes.copy(), gt.edges.copy(), pred.nodes.copy(), pred.edges.copy())
    r = apls(gt, pred, variant=variant, seed=5)
    assert all(
        np.array_equal(x, y)
        for x, y in zip(before, (gt.nodes, gt.edges, pred.nodes, pred.edges), strict=True)
    )
    assert isinstance(r, AplsResult) and r.variant == variant
    assert 0.9 < r.score < 1.0
    d = json.loads(json.dumps(r.to_dict()))
    assert d["score"] == r.score and d["params"]["seed"] == 5
    assert apls(gt, pred, variant=variant, seed=5) == r


def test_gsd_scales_lengths() -> None:
    gt = polyline([(10.0, 20.0), (110.0, 20.0)])
    pred = union(polyline([(10.0, 20.0), (58.0, 20.0)]), polyline([(62.0, 20.0), (110.0, 20.0)]))
    # At 0.5 m/px the 2 px offset of the midpoint is 1 m and the edge 50 m: one midpoint (25 m).
    r = apls_cosmiq(gt, pred, gsd=0.5)
    assert r.n_control_gt == 3
    assert r.gt_to_prop == pytest.approx(1 - 4.08 / 6, abs=1e-12)


def test_parameter_errors() -> None:
    g = polyline(dotted(10, 50))
    with pytest.raises(AplsParameterError, match="unknown APLS variant"):
        apls(g, g, variant="topo")
    with pytest.raises(AplsParameterError, match="small_tiles"):
        apls(g, g, variant="cosmiq", small_tiles=True)
    with pytest.raises(AplsParameterError, match="snap_distance"):
        apls(g, g, snap_distance=-1.0)
    with pytest.raises(AplsParameterError, match="gsd"):
        apls(g, g, variant="cosmiq", gsd=0.0)
    with pytest.raises(TypeError):
        apls(g, g, no_such_parameter=1)


def test_non_graph_input_is_refused() -> None:
    from linegraph2road.errors import GraphError

    g = polyline(dotted(10, 50))
    with pytest.raises(GraphError, match="RoadGraph"):
        apls(g, g.nodes)  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------------


@st.composite
def lattice_graphs(draw: st.DrawFn) -> RoadGraph:
    """Random subgraphs of a 5 x 5 lattice with 40 m spacing (junctions > 4 hops apart)."""
    cells = [(i, j) for i in range(5) for j in range(5)]
    cand = [((i, j), (i + 1, j)) for i, j in cells if i < 4] + [
        ((i, j), (i, j + 1)) for i, j in cells if j < 4
    ]
    chosen = draw(st.lists(st.sampled_from(cand), min_size=1, max_size=20, unique=True))
    index = {c: k for k, c in enumerate(cells)}
    nodes = np.array([[60.0 + 40.0 * i, 60.0 + 40.0 * j] for i, j in cells])
    edges = np.array([[index[a], index[b]] for a, b in chosen])
    return RoadGraph.from_edges(nodes, edges).drop_isolated_nodes()


@settings(max_examples=25, deadline=None)
@given(lattice_graphs())
def test_graph_against_itself_scores_one(g: RoadGraph) -> None:
    s = apls_sat2graph(g, g, min_path_length=0.0, region_size=1000.0, margin=1.0)
    assert s.score == 1.0
    c = apls_cosmiq(g, g)
    assert c.score == pytest.approx(1.0, abs=1e-12)
