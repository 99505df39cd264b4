"""Mask labels: keypoints (exact hand-made cases), discs and lines, the canonical frame."""

from __future__ import annotations

import math

import numpy as np
import pytest

from linegraph2road.data_prep.labels import (
    canonical_frame,
    dihedral_mask_inverse,
    dihedral_points,
    keypoint_mask,
    keypoint_nodes,
    node_angles,
    road_mask,
)
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph
from linegraph2road.rasterize import draw_discs, render_road_mask


def _bend(angle_deg: float) -> RoadGraph:
    """Three nodes, the middle one with the given angle between its two edges (180 = straight)."""
    a = math.radians(angle_deg)
    # the first edge points from the middle node towards -x, the second is turned by `a` from it
    nodes = [[30.0, 50.0], [50.0, 50.0], [50 - 20 * math.cos(a), 50 - 20 * math.sin(a)]]
    return RoadGraph(np.array(nodes), np.array([[0, 1], [1, 2]]))


def test_angle_definition_is_the_angle_between_the_two_edges() -> None:
    assert node_angles(_bend(90.0))[1] == pytest.approx(90.0)
    assert node_angles(_bend(170.0))[1] == pytest.approx(170.0)
    assert node_angles(_bend(180.0))[1] == pytest.approx(180.0)
    assert np.isnan(node_angles(_bend(90.0))[[0, 2]]).all()  # degree 1: no angle


def test_right_angle_turn_is_a_keypoint_and_a_170_degree_bend_is_not() -> None:
    assert keypoint_nodes(_bend(90.0)).tolist() == [0, 1, 2]
    assert keypoint_nodes(_bend(170.0)).tolist() == [0, 2]  # only the two dead ends


@pytest.mark.parametrize(
    ("angle", "is_keypoint"),
    [(30.0, False), (59.0, False), (61.0, True), (100.0, True), (119.0, True), (121.0, False)],
)
def test_turn_range_is_60_to_120_degrees(angle: float, is_keypoint: bool) -> None:
    assert (1 in keypoint_nodes(_bend(angle)).tolist()) is is_keypoint


def test_degree_zero_one_three_are_keypoints() -> None:
    nodes = np.array([[0.0, 0], [10, 0], [20, 0], [10, 10], [40, 40]])
    g = RoadGraph(nodes, np.array([[0, 1], [1, 2], [1, 3]]))
    assert keypoint_nodes(g).tolist() == [0, 1, 2, 3, 4]


def test_bad_turn_range_raises() -> None:
    with pytest.raises(GraphError, match="turn_min"):
        keypoint_nodes(_bend(90.0), turn_min=130.0, turn_max=120.0)


def test_keypoint_mask_exact_disc() -> None:
    g = RoadGraph(np.array([[5.5, 5.5], [15.5, 5.5]]), np.array([[0, 1]]))
    m = keypoint_mask(g, (12, 20), keypoint_radius=3.0)
    yy, xx = np.mgrid[0:12, 0:20]
    want = ((xx - 5) ** 2 + (yy - 5) ** 2 <= 9) | ((xx - 15) ** 2 + (yy - 5) ** 2 <= 9)
    np.testing.assert_array_equal(m, want)


def test_road_mask_equals_render_road_mask_and_is_three_pixels_wide() -> None:
    rng = np.random.default_rng(3)
    nodes = rng.uniform(-10, 110, size=(30, 2))
    g = RoadGraph.from_edges(nodes, rng.integers(0, 30, size=(40, 2)))
    np.testing.assert_array_equal(road_mask(g, (100, 100)), render_road_mask(g, (100, 100)))
    h = RoadGraph(np.array([[10.5, 20.5], [60.5, 20.5]]), np.array([[0, 1]]))
    cols = road_mask(h, (40, 80))[:, 30]
    assert np.flatnonzero(cols).tolist() == [19, 20, 21]


@pytest.mark.parametrize("code", range(8))
def test_dihedral_points_round_trip_and_match_masks(code: int) -> None:
    shape = (20, 30)
    p = np.array([[3.5, 4.5], [29.25, 0.75], [0.0, 20.0]])
    q = dihedral_points(p, shape, code)
    np.testing.assert_array_equal(dihedral_points(q, shape, code, inverse=True), p)
    tshape = shape if code % 2 == 0 else shape[::-1]
    # a disc drawn in the transformed frame maps back onto the disc drawn in the original one
    m = draw_discs(q[:2], tshape, radius=2.0)
    np.testing.assert_array_equal(
        dihedral_mask_inverse(m, code), draw_discs(p[:2], shape, radius=2.0)
    )


def test_canonical_frame_is_the_same_for_all_rotations_and_flips() -> None:
    rng = np.random.default_rng(0)
    nodes = np.round(rng.uniform(0, 64, size=(12, 2)) * 4) / 4
    g = RoadGraph.from_edges(nodes, rng.integers(0, 12, size=(15, 2)))
    t = TaggedGraph(g, layer=np.arange(g.num_edges) % 2, tagged=True)
    ref, _ = canonical_frame(t, (64, 64))
    for code in range(8):
        moved = TaggedGraph(
            g.replace(nodes=dihedral_points(g.nodes, (64, 64), code)), layer=t.layer, tagged=True
        )
        c, _ = canonical_frame(moved, (64, 64))
        np.testing.assert_array_equal(c.graph.nodes, ref.graph.nodes)
        np.testing.assert_array_equal(c.graph.edges, ref.graph.edges)
        np.testing.assert_array_equal(c.layer, ref.layer)
