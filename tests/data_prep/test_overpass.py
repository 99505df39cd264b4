"""Overpass crossings: tags, Algorithm 3, and the two agreeing on real OSM bridges."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from linegraph2road.data_prep._overpass_kernels import segment_intersections
from linegraph2road.data_prep.overpass import (
    detect_overpasses,
    edge_crossings,
    find_crossings,
    tagged_crossings,
)
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GraphError
from linegraph2road.graph import RoadGraph
from linegraph2road.io import read_graph


def _x_graph(layers: tuple[int, int] = (0, 1)) -> TaggedGraph:
    """Two edges crossing at (50, 50), far from all four endpoints."""
    nodes = np.array([[10.0, 50.0], [90.0, 50.0], [50.0, 10.0], [50.0, 90.0]])
    return TaggedGraph(RoadGraph(nodes, np.array([[0, 1], [2, 3]])), layer=layers, tagged=True)


def test_x_with_different_layers_is_one_crossing_with_four_endpoints() -> None:
    res = tagged_crossings(_x_graph())
    assert res.pairs.tolist() == [[0, 1]]
    np.testing.assert_allclose(res.points, [[50.0, 50.0]])
    assert res.endpoints.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(res.graph.graph.nodes, _x_graph().graph.nodes)  # nothing moved
    assert res.method == "tags"


def test_x_on_the_same_level_is_no_tagged_crossing_but_algorithm3_sees_it() -> None:
    same = _x_graph((0, 0))
    assert len(tagged_crossings(same).pairs) == 0
    res = detect_overpasses(same)
    assert res.pairs.tolist() == [[0, 1]]
    assert res.endpoints.tolist() == [0, 1, 2, 3]


def test_bridge_flag_alone_makes_a_tagged_crossing() -> None:
    g = _x_graph((0, 0))
    bridged = TaggedGraph(g.graph, bridge=[True, False], tagged=True)
    assert tagged_crossings(bridged).pairs.tolist() == [[0, 1]]


def test_t_junction_sharing_a_node_is_no_crossing() -> None:
    nodes = np.array([[10.0, 50.0], [50.0, 50.0], [90.0, 50.0], [50.0, 90.0]])
    g = TaggedGraph(RoadGraph(nodes, np.array([[0, 1], [1, 2], [1, 3]])), layer=[0, 0, 1])
    assert len(edge_crossings(g.graph)[0]) == 0
    assert len(detect_overpasses(g).pairs) == 0
    assert len(tagged_crossings(TaggedGraph(g.graph, layer=[0, 0, 1], tagged=True)).pairs) == 0


def test_endpoint_on_top_of_a_crossing_slides_back_along_its_road() -> None:
    # the lower road has a node 1.5 px from the crossing: Algorithm 3 moves it along its own road
    # (towards +x, away from the crossing) until it is tau away; the crossing stays
    nodes = np.array([[0.0, 50.0], [51.5, 50.0], [100.0, 50.0], [50.0, 0.0], [50.0, 100.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [1, 2], [3, 4]]))
    res = detect_overpasses(g, tau=6.0, alpha=1.0)
    moved = res.graph.graph.nodes
    assert moved[1, 1] == 50.0 and 56.0 <= moved[1, 0] <= 57.5
    np.testing.assert_array_equal(np.delete(moved, 1, axis=0), np.delete(nodes, 1, axis=0))
    assert len(res.pairs) == 1
    assert np.hypot(*(moved[res.endpoints] - res.points[0]).T).min() >= 6.0
    np.testing.assert_array_equal(g.nodes, nodes)  # input untouched


def test_overshooting_dead_end_is_pulled_back_and_the_false_crossing_resolved() -> None:
    nodes = np.array([[0.0, 0.0], [100.0, 0.0], [50.0, 50.0], [50.0, -2.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [2, 3]]))
    assert len(edge_crossings(g)[0]) == 1
    res = detect_overpasses(g)
    assert len(res.pairs) == 0
    assert 0.0 < res.graph.graph.nodes[3, 1] <= 1.0  # retracted just behind the road


def test_stacked_collinear_node_is_contracted_every_p_iterations() -> None:
    # node 1 lies 1.5 px from the crossing, almost on the line 0-2: it moves at iteration 1 and,
    # still within tau at iteration P = 2, is contracted (0 and 2 joined)
    nodes = np.array([[0.0, 50.0], [51.5, 50.2], [100.0, 50.4], [50.0, 0.0], [50.0, 100.0]])
    g = RoadGraph(nodes, np.array([[0, 1], [1, 2], [3, 4]]))
    res = detect_overpasses(g, P=2)
    out = res.graph.graph
    np.testing.assert_array_equal(out.nodes, nodes[[0, 2, 3, 4]])
    assert out.edges.tolist() == [[0, 1], [2, 3]]
    assert res.pairs.tolist() == [[0, 1]]
    assert res.iterations == 3  # iteration 3 moves nothing: converged
    # with a longer period the node just slides away instead
    assert detect_overpasses(g, P=10).graph.graph.num_nodes == 5


def test_result_pairs_match_a_fresh_search_on_the_refined_graph(fixtures_dir: Path) -> None:
    g = read_graph(fixtures_dir / "cityscale_example" / "gt.p")
    res = detect_overpasses(g)
    fresh, pts = edge_crossings(res.graph.graph)
    np.testing.assert_array_equal(res.pairs, fresh)
    np.testing.assert_allclose(res.points, pts)
    # independent check of the rtree search with shapely on the input graph
    lines = shapely.linestrings(np.stack([g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]], 1))
    a, b = shapely.STRtree(lines).query(lines, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    shared = (g.edges[a][:, :, None] == g.edges[b][:, None, :]).any(axis=(1, 2))
    want = sorted(zip(a[~shared].tolist(), b[~shared].tolist(), strict=True))
    assert edge_crossings(g)[0].tolist() == [list(p) for p in want]
    print(f"City-scale: {len(want)} crossings before, {len(res.pairs)} after Algorithm 3")
    # every endpoint ended at least tau from its crossing on this tile
    nodes = res.graph.graph.nodes
    for (ea, eb), p in zip(res.pairs, res.points, strict=True):
        ends = res.graph.graph.edges[[ea, eb]].reshape(-1)
        assert np.hypot(*(nodes[ends] - p).T).min() >= 6.0


def test_segment_intersections_parallel_and_touching() -> None:
    p1, p2 = np.array([[0.0, 0.0]] * 3), np.array([[10.0, 0.0]] * 3)
    q1 = np.array([[0.0, 1.0], [5.0, 0.0], [2.0, 0.0]])
    q2 = np.array([[10.0, 1.0], [5.0, 5.0], [8.0, 0.0]])
    hit, pts = segment_intersections(p1, p2, q1, q2)
    assert hit.tolist() == [False, True, False]  # parallel, touching, collinear overlap
    np.testing.assert_allclose(pts[1], [5.0, 0.0])


def test_bad_parameters_and_methods() -> None:
    with pytest.raises(GraphError, match="P >= 1"):
        detect_overpasses(_x_graph(), P=0)
    with pytest.raises(GraphError, match="alpha"):
        detect_overpasses(_x_graph(), alpha=0.0)
    with pytest.raises(GraphError, match="tags"):
        find_crossings(TaggedGraph.untagged(_x_graph().graph), method="tags")
    with pytest.raises(GraphError, match="unknown crossing method"):
        find_crossings(_x_graph(), method="magic")  # type: ignore[arg-type]


def test_auto_method_follows_the_tagged_flag() -> None:
    assert find_crossings(_x_graph()).method == "tags"
    assert find_crossings(TaggedGraph.untagged(_x_graph().graph)).method == "algorithm3"


# -- real OSM bridges -----------------------------------------------------------------------------
def finland_tile(fixtures_dir: Path) -> tuple[TaggedGraph, tuple[int, int]]:
    """The Finland extract on a 1 m/px UTM grid over its extent, and the grid's shape."""
    from linegraph2road.data_prep import grid as grid_mod
    from linegraph2road.data_prep import osm

    src = osm.read_osm(fixtures_dir / "osm" / "finland_motorway_test.osm.pbf")
    grid = grid_mod.TileGrid.from_bounds(src.graph.meta["extent"], crs="EPSG:4326", gsd=1.0)
    return grid_mod.clip_to_grid(src, grid), grid.shape


def test_finland_tags_and_algorithm3_find_the_same_bridge_crossings(fixtures_dir: Path) -> None:
    tile, _ = finland_tile(fixtures_dir)
    assert tile.bridge.any()
    # independent: shapely crossings of a bridge edge with a non-bridge edge, no shared node
    g = tile.graph
    lines = shapely.linestrings(np.stack([g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]], 1))
    a, b = shapely.STRtree(lines).query(lines, predicate="intersects")
    keep = (a < b) & (tile.bridge[a] != tile.bridge[b])
    a, b = a[keep], b[keep]
    shared = (g.edges[a][:, :, None] == g.edges[b][:, None, :]).any(axis=(1, 2))
    a, b = a[~shared], b[~shared]
    want = np.array(
        [
            shapely.get_coordinates(shapely.intersection(lines[i], lines[j]))[0]
            for i, j in zip(a, b, strict=True)
        ]
    )

    by_tags = find_crossings(tile)
    stripped = TaggedGraph.untagged(g)
    by_algo = find_crossings(stripped)
    assert (by_tags.method, by_algo.method) == ("tags", "algorithm3")
    print(
        f"Finland: {len(want)} bridge-over-road crossings (shapely), {len(by_tags.pairs)} from "
        f"tags, {len(by_algo.pairs)} from Algorithm 3 without tags"
    )
    for found in (by_tags, by_algo):
        assert len(found.pairs) == len(want)
        d = np.hypot(*(found.points[:, None, :] - want[None, :, :]).transpose(2, 0, 1))
        # the refinement moved one motorway-link node off a crossing: points shift by ~1 px
        assert d.min(axis=0).max() < 2.0 and d.min(axis=1).max() < 2.0
    np.testing.assert_allclose(by_tags.points, by_algo.points, atol=1e-9)
    np.testing.assert_allclose(by_tags.endpoint_points, by_algo.endpoint_points, atol=1e-9)
