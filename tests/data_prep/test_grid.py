"""Tile grids, projection and border clipping."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.errors import NotGeoreferencedWarning
from shapely.geometry import LineString, box

from linegraph2road.data_prep.grid import (
    NO_CRS_MESSAGE,
    TileGrid,
    check_overlap,
    clip_to_grid,
    data_extent,
)
from linegraph2road.data_prep.osm import LONLAT, read_osm
from linegraph2road.data_prep.tagged import TaggedGraph
from linegraph2road.errors import GeoreferenceError
from linegraph2road.georef import Georeference
from linegraph2road.graph import RoadGraph

FINLAND_BOUNDS = (26.93, 60.52, 26.97, 60.54)


def from_origin(west: float, north: float, xres: float, yres: float) -> Affine:
    """North-up transform (rasterio's ``from_origin`` warns under affine >= 3.1)."""
    return Affine(xres, 0.0, west, 0.0, -yres, north)


def _pixel_graph(nodes: list, edges: list, **tags: list) -> TaggedGraph:
    return TaggedGraph(RoadGraph(np.asarray(nodes, float), np.asarray(edges)), **tags)


def _write_tif(path: Path, *, crs: str | None, transform: Affine, size: int = 8) -> Path:
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "uint8"}
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with warnings.catch_warnings():  # a raster without CRS is what some tests want
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.zeros((1, size, size), np.uint8))
    return path


# -- TileGrid --------------------------------------------------------------------------------
def test_from_bounds_projected_exact() -> None:
    g = TileGrid.from_bounds((100.5, 20.0, 110.0, 25.0), crs="EPSG:32635", gsd=1.0)
    assert (g.width, g.height) == (10, 5)
    assert tuple(g.georef.transform)[:6] == (1.0, 0.0, 100.0, 0.0, -1.0, 25.0)
    half = TileGrid.from_bounds((0.0, 0.0, 10.0, 5.0), crs="EPSG:32635", gsd=0.5)
    assert half.shape == (10, 20)


def test_from_bounds_lonlat_picks_utm() -> None:
    g = TileGrid.from_bounds(FINLAND_BOUNDS, crs="EPSG:4326", gsd=1.0)
    assert g.georef.crs.to_epsg() == 32635
    assert g.georef.gsd() == pytest.approx(1.0)
    assert 2100 < g.width < 2300 and 2150 < g.height < 2300
    corners = [[26.93, 60.52], [26.97, 60.52], [26.93, 60.54], [26.97, 60.54]]
    px = g.georef.lonlat_to_pixel(corners)
    assert (px >= 0).all() and (px[:, 0] <= g.width).all() and (px[:, 1] <= g.height).all()


@pytest.mark.parametrize(
    ("bounds", "crs", "gsd", "match"),
    [
        ((1, 0, 0, 1), "EPSG:4326", 1.0, "min < max"),
        ((0, 0, 1, 1), "EPSG:4326", 0.0, "gsd"),
        ((500000, 0, 500001, 1), "EPSG:4326", 1.0, "not lon/lat"),
        ((0, 0, 1e9, 1), "EPSG:32635", 1e-3, "too large"),
        ((0, 0, 1, 1), "EPSG:nope", 1.0, "coordinate reference system"),
    ],
)
def test_from_bounds_errors(bounds: tuple, crs: str, gsd: float, match: str) -> None:
    with pytest.raises(GeoreferenceError, match=match):
        TileGrid.from_bounds(bounds, crs=crs, gsd=gsd)


def test_tiles_partition_the_grid() -> None:
    parent = TileGrid(5000, 3000, Georeference("EPSG:32635", Affine(1, 0, 1000, 0, -1, 9000)))
    tiles = parent.tiles(2048)
    assert [t.name for t in tiles] == [f"r{r:03d}_c{c:03d}" for r in range(2) for c in range(3)]
    assert sum(t.width * t.height for t in tiles) == 5000 * 3000
    assert [(t.width, t.height) for t in tiles[:3]] == [(2048, 2048), (2048, 2048), (904, 2048)]
    for t in tiles:
        np.testing.assert_allclose(
            t.georef.pixel_to_crs([[0, 0]]), parent.georef.pixel_to_crs([[t.col_off, t.row_off]])
        )
    assert TileGrid(10, 10).tiles(2048) == [TileGrid(10, 10, None, 0, 0, "r000_c000")]
    with pytest.raises(GeoreferenceError):
        parent.tiles(0)


def test_from_raster(tmp_path: Path) -> None:
    tr = from_origin(496000, 6711000, 2.0, 2.0)
    g = TileGrid.from_raster(_write_tif(tmp_path / "a.tif", crs="EPSG:32635", transform=tr))
    assert (g.width, g.height) == (8, 8) and g.georef.transform == tr
    bare = _write_tif(tmp_path / "bare.tif", crs=None, transform=Affine.identity())
    with pytest.raises(GeoreferenceError, match=NO_CRS_MESSAGE):
        TileGrid.from_raster(bare)
    assert TileGrid.from_raster(bare, require_crs=False).georef is None


# -- clipping, exact small cases -------------------------------------------------------------
def test_clip_exact() -> None:
    src = _pixel_graph(
        [[-5, 5], [5, 5], [-5, 2], [15, 2], [20, 20], [30, 30], [5, 8], [8, 8]],
        [[0, 1], [2, 3], [4, 5], [6, 7]],
        bridge=[False, True, False, False],
        layer=[0, 1, 0, 0],
        highway=["a", "b", "c", "d"],
        way_id=[7, 8, 9, 10],
    )
    out = clip_to_grid(src, TileGrid(10, 10))
    g = out.graph
    np.testing.assert_allclose(g.nodes, [[5, 5], [5, 8], [8, 8], [0, 5], [0, 2], [10, 2]])
    np.testing.assert_array_equal(g.edges, [[0, 3], [4, 5], [1, 2]])
    assert out.highway.tolist() == ["a", "b", "d"]
    np.testing.assert_array_equal(out.way_id, [7, 8, 10])
    np.testing.assert_array_equal(out.select_edges([True, False, True]).way_id, [7, 10])
    np.testing.assert_array_equal(out.bridge, [False, True, False])
    np.testing.assert_array_equal(out.layer, [0, 1, 0])
    assert g.georef is None and g.meta["tile"] == ""
    # the input is not modified
    assert src.graph.num_edges == 4 and src.highway.tolist() == ["a", "b", "c", "d"]


def test_clip_merges_near_duplicates_and_offsets() -> None:
    # nodes 1 and 2 are 1e-8 px apart: one node; the two edges then coincide: one edge
    src = _pixel_graph(
        [[12, 12], [14, 14], [14, 14 + 1e-8], [12, 12 + 1e-9], [16, 12]],
        [[0, 1], [2, 3], [1, 4]],
        bridge=[True, False, False],
    )
    out = clip_to_grid(src, TileGrid(10, 10, col_off=10, row_off=10))
    np.testing.assert_allclose(out.graph.nodes, [[2, 2], [4, 4], [6, 2]])
    np.testing.assert_array_equal(out.graph.edges, [[0, 1], [1, 2]])
    np.testing.assert_array_equal(out.bridge, [True, False])


def test_clip_empty_and_outside() -> None:
    empty = clip_to_grid(_pixel_graph(np.zeros((0, 2)), np.zeros((0, 2), int)), TileGrid(4, 4))
    assert empty.graph.num_nodes == 0
    far = clip_to_grid(_pixel_graph([[50, 50], [60, 60]], [[0, 1]]), TileGrid(4, 4))
    assert far.graph.num_edges == 0 and far.graph.num_nodes == 0


def test_clip_lonlat_needs_a_crs() -> None:
    src = TaggedGraph(RoadGraph(np.array([[26.9, 60.5], [26.95, 60.53]]), [[0, 1]], georef=LONLAT))
    with pytest.raises(GeoreferenceError, match=NO_CRS_MESSAGE):
        clip_to_grid(src, TileGrid(16, 16))


coord = st.floats(-30, 50, allow_nan=False)
segment = st.tuples(coord, coord, coord, coord).filter(
    lambda s: np.hypot(s[2] - s[0], s[3] - s[1]) > 1e-3
)


@settings(max_examples=80, deadline=None)
@given(segment)
def test_clip_property_one_segment(s: tuple) -> None:
    """A clipped segment keeps the part shapely finds inside the box.

    The clipper allows 1e-9 px of slack at the border (a road running along it stays) and drops
    clipped slivers shorter than 1e-3 px; the comparison allows for both.
    """
    src = _pixel_graph([s[:2], s[2:]], [[0, 1]])
    out = clip_to_grid(src, TileGrid(20, 10))
    tile = box(-1e-9, -1e-9, 20 + 1e-9, 10 + 1e-9)
    expected = LineString([s[:2], s[2:]]).intersection(tile).length
    assert out.graph.total_length() == pytest.approx(expected, abs=1e-3)
    if expected > 2e-3:
        assert out.graph.num_edges == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(segment, min_size=1, max_size=8))
def test_clip_property_nodes_inside(segs: list) -> None:
    """Every node of a clipped graph lies in the closed tile box; tags follow edges."""
    pts = np.array(segs, dtype=float).reshape(-1, 2)
    edges = np.arange(len(pts)).reshape(-1, 2)
    names = [f"e{k}" for k in range(len(edges))]
    out = clip_to_grid(_pixel_graph(pts, edges, highway=names), TileGrid(20, 10))
    n = out.graph.nodes
    assert ((n >= 0) & (n <= [20, 10])).all()
    tile = box(0, 0, 20, 10)
    for (i, j), name in zip(out.graph.edges.tolist(), out.highway.tolist(), strict=True):
        k = int(name[1:])  # the clipped edge lies on its source segment
        seg = LineString([pts[2 * k], pts[2 * k + 1]])
        assert seg.distance(LineString([n[i], n[j]]).centroid) < 1e-6
        assert tile.buffer(1e-9).contains(LineString([n[i], n[j]]))


# -- real data -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finland(fixtures_dir: Path) -> TaggedGraph:
    return read_osm(fixtures_dir / "osm" / "finland_motorway_test.osm.pbf")


def test_finland_on_utm_grid(finland: TaggedGraph) -> None:
    grid = TileGrid.from_bounds(FINLAND_BOUNDS, crs="EPSG:4326", gsd=1.0)
    whole = clip_to_grid(finland, grid)
    g = whole.graph
    # the extract lies inside its bounds: nothing is clipped away
    assert (g.num_nodes, g.num_edges) == (finland.graph.num_nodes, finland.graph.num_edges)
    assert g.georef == grid.georef and whole.tagged
    assert ((g.nodes >= 0) & (g.nodes <= [grid.width, grid.height])).all()
    assert int(whole.bridge.sum()) == 5
    motorway_km = g.edge_lengths()[whole.highway == "motorway"].sum() / 1000
    assert 4.0 < motorway_km < 4.6  # 1 px = 1 m
    # pixel lengths agree with geodesic lengths of the lon/lat edges (UTM scale ~0.9996)
    lonlat = g.georef.pixel_to_lonlat(g.nodes)
    np.testing.assert_allclose(lonlat, finland.graph.nodes, atol=1e-9)
    # tiling keeps every metre of road and puts every node inside its tile
    tiles = grid.tiles(1024)
    parts = [clip_to_grid(finland, t) for t in tiles]
    assert sum(p.graph.total_length() for p in parts) == pytest.approx(g.total_length())
    assert sum(int(p.bridge.sum()) for p in parts) >= 5
    for t, p in zip(tiles, parts, strict=True):
        assert ((p.graph.nodes >= 0) & (p.graph.nodes <= [t.width, t.height])).all()
        assert p.graph.meta["tile"] == t.name


def test_overlap(finland: TaggedGraph) -> None:
    assert data_extent(finland) == pytest.approx(FINLAND_BOUNDS, abs=1e-6)
    inside = TileGrid(64, 64, Georeference("EPSG:32635", from_origin(496160, 6709400, 1, 1)))
    check_overlap(finland, inside)  # overlapping extents, even though no road is there
    assert clip_to_grid(finland, inside).graph.num_edges == 0
    vegas = TileGrid(64, 64, Georeference("EPSG:32611", from_origin(660000, 4010000, 1, 1)))
    with pytest.raises(GeoreferenceError, match="do not overlap"):
        check_overlap(finland, vegas)
    with pytest.raises(GeoreferenceError, match=NO_CRS_MESSAGE):
        check_overlap(finland, TileGrid(8, 8))


def test_pixel_graph_tiles(fixtures_dir: Path) -> None:
    from linegraph2road.io import read_graph

    gt = TaggedGraph.untagged(read_graph(fixtures_dir / "cityscale_example" / "gt.p"))
    tiles = TileGrid(2048, 2048).tiles(700)
    parts = [clip_to_grid(gt, t) for t in tiles]
    assert sum(p.graph.total_length() for p in parts) == pytest.approx(gt.graph.total_length())
    assert all(not p.tagged for p in parts)
