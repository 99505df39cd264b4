"""mask_to_graph: tiny exact cases, properties on random masks, and the real Vegas ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.morphology import skeletonize

from linegraph2road.errors import FormatError, GraphError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph
from linegraph2road.io.raster import read_georef
from linegraph2road.mask2graph import mask_to_graph
from linegraph2road.rasterize import draw_segments


def _node_set(g: RoadGraph) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for x, y in g.nodes}


def _edge_set(g: RoadGraph) -> set[frozenset[tuple[float, float]]]:
    n = [(float(x), float(y)) for x, y in g.nodes]
    return {frozenset((n[i], n[j])) for i, j in g.edges}


def _components(g: RoadGraph) -> list[set[int]]:
    adj, seen, comps = g.neighbors(), set(), []
    for s in range(g.num_nodes):
        if s in seen:
            continue
        comp, todo = set(), [s]
        while todo:
            v = todo.pop()
            if v not in comp:
                comp.add(v)
                todo.extend(adj[v])
        seen |= comp
        comps.append(comp)
    return comps


def _dangling_chains(g: RoadGraph) -> list[float]:
    """Lengths of chains from a degree-1 node through degree-2 nodes to a degree >= 3 node."""
    adj, deg, out = g.neighbors(), g.degrees(), []
    for leaf in np.flatnonzero(deg == 1):
        prev, cur, length = -1, int(leaf), 0.0
        while True:
            nxt = next(v for v in adj[cur] if v != prev)
            length += float(np.hypot(*(g.nodes[nxt] - g.nodes[cur])))
            prev, cur = cur, nxt
            if deg[cur] != 2:
                break
        if deg[cur] >= 3:
            out.append(length)
    return out


# -- tiny exact cases ---------------------------------------------------------------------------
def test_straight_one_pixel_line() -> None:
    m = np.zeros((30, 50), dtype=bool)
    m[10, 5:41] = True
    g = mask_to_graph(m)
    assert _node_set(g) == {(5.5, 10.5), (40.5, 10.5)}
    assert g.num_edges == 1


def test_thick_line_ends_near_the_drawn_ends() -> None:
    g = mask_to_graph(draw_segments([[10.0, 30.0]], [[90.0, 30.0]], (60, 100), width=7))
    assert g.num_nodes == 2 and g.num_edges == 1
    ends = sorted(map(tuple, g.nodes))
    assert np.allclose(ends, [(10.5, 30.5), (90.5, 30.5)], atol=1.5)


def test_plus_has_its_centre_at_the_crossing() -> None:
    m = np.zeros((51, 51), dtype=bool)
    m[25, 5:46] = True
    m[5:46, 25] = True
    g = mask_to_graph(m)
    assert _node_set(g) == {(25.5, 25.5), (5.5, 25.5), (45.5, 25.5), (25.5, 5.5), (25.5, 45.5)}
    centre = int(np.flatnonzero((g.nodes == (25.5, 25.5)).all(axis=1))[0])
    assert g.num_edges == 4 and g.degrees()[centre] == 4


def _tee(stub: int) -> np.ndarray:
    m = np.zeros((60, 60), dtype=bool)
    m[10, 5:56] = True
    m[11 : 11 + stub, 30] = True
    return m


def test_short_spur_of_a_tee_is_pruned_long_arms_stay() -> None:
    g = mask_to_graph(_tee(7))
    assert _node_set(g) == {(5.5, 10.5), (55.5, 10.5)}  # junction merged away, line re-simplified
    assert g.num_edges == 1


def test_long_stem_of_a_tee_stays() -> None:
    g = mask_to_graph(_tee(40))
    assert g.num_nodes == 4 and g.num_edges == 3
    assert sorted(g.degrees().tolist()) == [1, 1, 1, 3]
    assert (30.5, 50.5) in _node_set(g)
    junction = g.nodes[g.degrees() == 3][0]
    assert np.allclose(junction, (30.5, 10.5), atol=0.5)


def test_spur_pruning_can_be_switched_off() -> None:
    g = mask_to_graph(_tee(7), min_spur_length=0)
    assert g.num_edges == 3 and (30.5, 17.5) in _node_set(g)


def test_collinear_gap_is_bridged() -> None:
    m = np.zeros((40, 100), dtype=bool)
    m[20, 5:41] = True
    m[20, 48:91] = True
    g = mask_to_graph(m, bridge_gap=15)
    assert len(_components(g)) == 1
    assert frozenset({(40.5, 20.5), (48.5, 20.5)}) in _edge_set(g)
    assert len(_components(mask_to_graph(m, bridge_gap=0))) == 2


def test_perpendicular_gap_bridges_to_an_edge_point_only_when_near() -> None:
    m = np.zeros((100, 80), dtype=bool)
    m[20, 5:61] = True  # horizontal road
    m[40:81, 30] = True  # a road ending 20 px below it, pointing at it
    far = mask_to_graph(m, bridge_gap=15)
    assert len(_components(far)) == 2 and far.num_edges == 2
    near = mask_to_graph(m, bridge_gap=25)
    assert len(_components(near)) == 1
    assert frozenset({(30.5, 40.5), (30.5, 20.5)}) in _edge_set(near)  # the edge was split there
    assert near.degrees()[np.flatnonzero((near.nodes == (30.5, 20.5)).all(axis=1))[0]] == 3


def test_side_by_side_ends_are_not_bridged() -> None:
    m = np.zeros((40, 60), dtype=bool)
    m[20, 5:41] = True
    m[28, 5:41] = True  # parallel, 8 px apart: the gap is across the roads' directions
    assert len(_components(mask_to_graph(m, bridge_gap=15))) == 2


def test_ring_becomes_a_cycle() -> None:
    t = np.linspace(0.0, 2.0 * np.pi, 41)
    pts = np.column_stack([50 + 30 * np.cos(t), 50 + 30 * np.sin(t)])
    g = mask_to_graph(draw_segments(pts[:-1], pts[1:], (100, 100), width=3))
    assert g.num_nodes >= 3 and g.num_edges == g.num_nodes
    assert (g.degrees() == 2).all() and len(_components(g)) == 1
    assert np.allclose(np.hypot(*(g.nodes - 50.0).T), 30.0, atol=1.5)


def test_small_component_is_dropped_long_one_kept() -> None:
    m = np.zeros((40, 80), dtype=bool)
    m[10, 5:70] = True
    m[30, 5:16] = True
    g = mask_to_graph(m, min_object_area=0, min_component_length=20)
    assert _node_set(g) == {(5.5, 10.5), (69.5, 10.5)}
    g = mask_to_graph(m, min_object_area=0, min_component_length=5)
    assert len(_components(g)) == 2


def test_threshold_is_strict() -> None:
    m = np.zeros((40, 60), dtype=np.float32)
    m[10, 5:50] = 0.6
    m[30, 5:50] = 0.5
    g = mask_to_graph(m, threshold=0.5)
    assert _node_set(g) == {(5.5, 10.5), (49.5, 10.5)}


@pytest.mark.parametrize(
    "mask", [np.zeros((0, 0)), np.zeros((16, 16)), np.full((8, 9), 0.5), np.ones((20, 20))]
)
def test_empty_or_degenerate_masks_give_a_valid_graph(mask: np.ndarray) -> None:
    g = mask_to_graph(mask)
    assert g.num_edges == 0 and g.num_nodes == 0


def test_georef_is_passed_through() -> None:
    geo = Georeference("EPSG:32611", Affine(0.3, 0.0, 500000.0, 0.0, -0.3, 4000000.0))
    m = np.zeros((30, 50), dtype=bool)
    m[10, 5:41] = True
    g = mask_to_graph(m, georef=geo)
    assert g.georef == geo
    assert mask_to_graph(np.zeros((5, 5)), georef=geo).georef == geo


def test_input_is_not_mutated_and_may_be_read_only() -> None:
    m = draw_segments([[5.0, 5.0]], [[50.0, 40.0]], (50, 60), width=5).astype(np.float64) * 0.9
    m.setflags(write=False)
    before = m.copy()
    g = mask_to_graph(m)
    assert g.num_edges >= 1
    np.testing.assert_array_equal(m, before)


@pytest.mark.parametrize(
    ("mask", "kwargs", "error"),
    [
        (np.zeros((2, 3, 4)), {}, FormatError),
        (np.zeros(5), {}, FormatError),
        (np.array([["a", "b"]]), {}, FormatError),
        (np.zeros((4, 4)), {"simplify_tolerance": -1.0}, GraphError),
        (np.zeros((4, 4)), {"bridge_gap": float("nan")}, GraphError),
        (np.zeros((4, 4)), {"bridge_max_angle": 200.0}, GraphError),
        (np.zeros((4, 4)), {"min_spur_length": "10"}, GraphError),
    ],
)
def test_bad_input_raises_domain_errors(
    mask: np.ndarray, kwargs: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        mask_to_graph(mask, **kwargs)  # type: ignore[arg-type]


# -- properties on random thick polylines -------------------------------------------------------
@st.composite
def road_masks(draw: st.DrawFn) -> np.ndarray:
    h = draw(st.integers(30, 90))
    w = draw(st.integers(30, 90))
    n_lines = draw(st.integers(1, 3))
    starts, ends = [], []
    for _ in range(n_lines):
        k = draw(st.integers(2, 4))
        xs = draw(st.lists(st.floats(0, w), min_size=k, max_size=k))
        ys = draw(st.lists(st.floats(0, h), min_size=k, max_size=k))
        pts = np.column_stack([xs, ys])
        starts.append(pts[:-1])
        ends.append(pts[1:])
    width = draw(st.sampled_from([1, 3, 5, 7]))
    return draw_segments(np.concatenate(starts), np.concatenate(ends), (h, w), width=width)


NO_CLEANING = {
    "min_hole_area": 0,
    "min_object_area": 0,
    "min_spur_length": 0,
    "min_component_length": 0,
    "bridge_gap": 0,
}


def _edge_geometry(g: RoadGraph) -> shapely.Geometry:
    return shapely.multilinestrings(g.nodes[g.edges])


@settings(max_examples=40, deadline=None)
@given(mask=road_masks(), tol=st.sampled_from([0.0, 1.0, 2.0]))
def test_every_edge_point_lies_on_the_mask(mask: np.ndarray, tol: float) -> None:
    g = mask_to_graph(mask, simplify_tolerance=tol, **NO_CLEANING)
    if g.num_edges == 0:
        return
    # distance from each pixel to the nearest mask pixel centre, sampled along every edge
    dist = ndimage.distance_transform_edt(~mask)
    a, b = g.nodes[g.edges[:, 0]], g.nodes[g.edges[:, 1]]
    t = np.linspace(0.0, 1.0, 21)[:, None, None]
    pts = (a + t * (b - a)).reshape(-1, 2)
    cols = np.clip(np.floor(pts[:, 0]).astype(int), 0, mask.shape[1] - 1)
    rows = np.clip(np.floor(pts[:, 1]).astype(int), 0, mask.shape[0] - 1)
    assert dist[rows, cols].max() <= tol + 1.5


@settings(max_examples=40, deadline=None)
@given(mask=road_masks(), tol=st.sampled_from([0.0, 1.0, 2.0]))
def test_the_graph_covers_the_whole_skeleton(mask: np.ndarray, tol: float) -> None:
    # Without cleaning, every skeleton pixel that is not a junction pixel (>= 3 neighbours,
    # merged into a cluster centroid) nor isolated is a chain vertex, and Douglas-Peucker keeps
    # every dropped vertex within ``tol`` of the simplified polyline.
    g = mask_to_graph(mask, simplify_tolerance=tol, **NO_CLEANING)
    skel = skeletonize(mask)
    neighbours = ndimage.convolve(skel.astype(int), np.ones((3, 3), dtype=int), mode="constant")
    rows, cols = np.nonzero(skel & (neighbours - 1 >= 1) & (neighbours - 1 <= 2))
    if len(rows) == 0:
        return
    d = shapely.distance(_edge_geometry(g), shapely.points(np.column_stack([cols, rows]) + 0.5))
    assert d.max() <= tol + 1e-9


@settings(max_examples=40, deadline=None)
@given(mask=road_masks(), spur=st.sampled_from([5.0, 15.0, 30.0]))
def test_no_short_spur_or_small_component_survives(mask: np.ndarray, spur: float) -> None:
    g = mask_to_graph(mask, min_spur_length=spur, min_component_length=2 * spur)
    assert all(length >= spur for length in _dangling_chains(g))
    length = g.edge_lengths()
    for comp in _components(g):
        on = np.isin(g.edges[:, 0], list(comp))
        assert length[on].sum() >= 2 * spur
    assert (g.degrees() >= 1).all()


# -- the real SpaceNet Vegas ground truth ---------------------------------------------------------
def test_vegas_ground_truth_mask_round_trips_to_its_graph(fixtures_dir: Path) -> None:
    folder = fixtures_dir / "spacenet_vegas"
    georef = read_georef(folder / "RGB-PanSharpen_AOI_2_Vegas_img0.tif")
    assert georef is not None
    size = 1300
    features = json.loads((folder / "AOI_2_Vegas_img0_gt.geojson").read_text())["features"]
    lines = [
        georef.lonlat_to_pixel(np.asarray(f["geometry"]["coordinates"])[:, :2]) for f in features
    ]
    tile = shapely.box(0, 0, size, size)
    gt_length = sum(shapely.intersection(shapely.linestrings(p), tile).length for p in lines)

    # 0.3 m/px: roads ~6 m = 20 px wide; lengths scaled from the 1 m/px defaults
    width, spur = 20, 40.0
    mask = draw_segments(
        np.concatenate([p[:-1] for p in lines]),
        np.concatenate([p[1:] for p in lines]),
        (size, size),
        width=width,
    )
    g = mask_to_graph(
        mask,
        min_hole_area=400,
        min_object_area=300,
        simplify_tolerance=3.0,
        min_spur_length=spur,
        min_component_length=60.0,
        bridge_gap=50.0,
        bridge_max_angle=30.0,
        georef=georef,
    )
    assert g.georef == georef
    assert ((g.nodes >= 0) & (g.nodes <= size)).all()
    lonlat = g.georef.pixel_to_lonlat(g.nodes)
    lo = georef.pixel_to_lonlat(np.array([[0.0, size]]))[0]
    hi = georef.pixel_to_lonlat(np.array([[size, 0.0]]))[0]
    assert ((lonlat >= lo) & (lonlat <= hi)).all()
    # measured: GT 16127.5 px, graph 15856.4 px (ratio 0.983), 95 nodes, 118 edges
    assert g.total_length() == pytest.approx(gt_length, rel=0.10)
    assert 60 <= g.num_nodes <= 200
    spurs = _dangling_chains(g)
    assert spurs and min(spurs) >= spur
    assert len(_components(g)) <= 3
